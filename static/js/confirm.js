// A form marked data-confirm="question?" asks before it is sent (banning, lifting a ban);
// without JavaScript it is sent as it is, so the action still works.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
