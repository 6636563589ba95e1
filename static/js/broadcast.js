// A broadcast's page follows it while it goes out: its figures are updated in place every two seconds (no
// reload that would lose a screen reader's place), and the page reloads once the state changes, to show how it
// ended, who it did not reach and what to do.
(function () {
  "use strict";
  var box = document.getElementById("broadcast-progress");
  if (!box || !box.dataset.url) {
    return;
  }
  var EVERY = 2000;

  function update(answer) {
    if (answer.state !== box.dataset.state) {
      window.location.reload();
      return;
    }
    Object.keys(answer.figures).forEach(function (id) {
      var element = document.getElementById(id);
      if (element && element.textContent !== answer.figures[id]) {
        element.textContent = answer.figures[id];
      }
    });
    var bar = document.getElementById("progress");
    bar.max = Math.max(answer.total, 1);
    bar.value = answer.gone_through;
    window.setTimeout(poll, EVERY);
  }

  function poll() {
    fetch(box.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(update)
      .catch(function () {
        window.setTimeout(poll, EVERY * 3); // the server restarting, or signed out: try again a little later
      });
  }

  window.setTimeout(poll, EVERY);
})();
