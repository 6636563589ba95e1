import factory

from accounts.models import Ban, BannedKeyword, CreditPack, Payment, TelegramUser, Tier


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    name = factory.Sequence(lambda n: f"tier {n}")
    daily_limit = 5
    max_resolution = "2K"
    max_concurrent_jobs = 1


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TelegramUser

    telegram_id = factory.Sequence(lambda n: 1000 + n)
    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Alice"
    language_code = "en"
    tier = factory.SubFactory(TierFactory)


class BanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ban

    user = factory.SubFactory(UserFactory)
    reason = "spamming"


class KeywordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BannedKeyword

    phrase = "forbidden"


class PackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditPack

    name = factory.Sequence(lambda n: f"Pack {n}")
    stars = 100
    images = 20


class PaymentFactory(factory.django.DjangoModelFactory):
    """A payment as accounts.payments.credit records it, without its credits (use credit() for those)."""

    class Meta:
        model = Payment

    user = factory.SubFactory(UserFactory)
    pack = factory.SubFactory(PackFactory)
    pack_name = factory.LazyAttribute(lambda payment: payment.pack.name if payment.pack else "?")
    stars = factory.LazyAttribute(lambda payment: payment.pack.stars if payment.pack else 100)
    images = factory.LazyAttribute(lambda payment: payment.pack.images if payment.pack else 20)
    charge_id = factory.Sequence(lambda n: f"charge-{n}")
    payload = "pack:0:0:0:0:0"
