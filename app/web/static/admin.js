// The administrator's console: the copy button next to a secret shown once.
(function () {
  "use strict";
  function done(button) { button.textContent = button.getAttribute("data-copied"); }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(button); });
      return;
    }
    // Without the clipboard API (plain http): select the text so Ctrl+C copies it.
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    if (document.execCommand && document.execCommand("copy")) { done(button); }
  });
})();
