// A table wider than the screen scrolls sideways in its own box (dashboard.css). Keyboard users can
// scroll only a box that takes focus, so each such table joins the Tab order, and leaves it once it fits.
"use strict";

function letScrollingTablesTakeFocus() {
  for (const table of document.querySelectorAll("main table")) {
    if (table.scrollWidth > table.clientWidth) {
      table.tabIndex = 0;
    } else {
      table.removeAttribute("tabindex");
    }
  }
}

letScrollingTablesTakeFocus();
window.addEventListener("resize", letScrollingTablesTakeFocus);
