// JuistePlek web app: small progressive enhancements; every page works without JavaScript.
(function () {
  "use strict";

  // −/+ buttons next to a number field: step the value within its min and max.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-step]");
    if (!button) { return; }
    var input = document.getElementById(button.getAttribute("data-for"));
    if (!input) { return; }
    var step = parseInt(button.getAttribute("data-step"), 10);
    var value = parseInt(input.value, 10);
    if (isNaN(value)) { value = 0; } else { value += step; }
    var min = input.min === "" ? 0 : parseInt(input.min, 10);
    var max = input.max === "" ? Infinity : parseInt(input.max, 10);
    input.value = String(Math.min(max, Math.max(min, value)));
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // Move focus to the main landmark after the skip link (some browsers keep it on the link).
  document.addEventListener("click", function (event) {
    if (event.target.closest(".skip-link")) {
      var main = document.getElementById("main");
      if (main) { main.focus(); }
    }
  });

  // Countdowns: <time data-countdown datetime="..."> shows the minutes left, updated each 15 s.
  var lang = document.documentElement.lang;
  function minutesLeft(el) {
    var left = Math.round((Date.parse(el.getAttribute("datetime")) - Date.now()) / 60000);
    if (left <= 0) { return lang === "nl" ? "verlopen" : "expired"; }
    return lang === "nl" ? "over " + left + " min" : "in " + left + " min";
  }
  function tick() {
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      el.textContent = minutesLeft(el);
    });
  }
  setInterval(tick, 15000);
})();
