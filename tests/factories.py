import factory

from accounts.models import Ban, BannedKeyword, TelegramUser, Tier


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
