// Live pages (board, placements): the connection indicator, the time of the last update, a
// re-fetch after a reconnect, the new-referral alert and the hold countdowns. The stream itself is
// htmx's SSE extension (sse-connect); each fragment re-fetches itself on its own event name.
(function () {
  "use strict";
  var wasDown = false;
  var opened = false;

  function status() { return document.getElementById("live-status"); }

  function setState(state) {
    var el = status();
    if (!el) { return; }
    el.setAttribute("data-state", state);
    var icon = state === "connected" ? "●" : "◌";
    el.textContent = "";
    var i = document.createElement("span");
    i.setAttribute("aria-hidden", "true");
    i.textContent = icon + " ";
    el.appendChild(i);
    el.appendChild(document.createTextNode(el.getAttribute("data-label-" + state) || state));
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function touch() {
    var el = document.getElementById("live-last");
    if (!el) { return; }
    var d = new Date();
    el.textContent = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    el.setAttribute("datetime", d.toISOString());
  }

  document.addEventListener("htmx:sseOpen", function () {
    setState("connected");
    if (wasDown || opened) {
      // Anything may have changed while the stream was down: re-fetch every live region.
      htmx.trigger(document.body, "jp:resync");
    }
    wasDown = false;
    opened = true;
    touch();
  });
  document.addEventListener("htmx:sseError", function () {
    setState("reconnecting");
    wasDown = true;
  });
  document.addEventListener("htmx:sseMessage", function (evt) {
    touch();
    var msg = evt.detail || {};
    if (msg.type === "referral") { alertReferral(); }
    if (typeof msg.type === "string" && msg.type.indexOf("placement.") === 0) { triaged(msg); }
  });

  // Someone else triaged or closed this placement: its triage form no longer applies.
  function triaged(msg) {
    var form = document.getElementById("triage-form");
    if (!form) { return; }
    var data = {};
    try { data = JSON.parse(msg.data); } catch (e) { return; }
    if (data.state && data.state !== "requested") {
      var section = form.closest("section");
      if (section) { section.remove(); }
    }
  }

  var audio = null;
  function beep() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return; }
      audio = audio || new Ctx();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.08;
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.25);
    } catch (e) { /* a browser that blocks sound still shows the alert */ }
  }

  function alertReferral() {
    var box = document.getElementById("referral-alert");
    if (!box) { return; }
    box.textContent = "";
    var strong = document.createElement("strong");
    strong.textContent = "⚠ " + (box.getAttribute("data-text") || "New referral");
    var link = document.createElement("a");
    link.href = "/ui/placements";
    link.textContent = box.getAttribute("data-link") || "Open";
    box.appendChild(strong);
    box.appendChild(document.createTextNode(" "));
    box.appendChild(link);
    box.setAttribute("role", "alert");
    box.hidden = false;
    box.classList.remove("flash");
    void box.offsetWidth;  // restart the animation
    box.classList.add("flash");
    beep();
  }

  // Hold expiry countdowns: <span data-expires="ISO">; the server renders the first value.
  function tick() {
    var now = Date.now();
    var els = document.querySelectorAll("[data-expires]");
    for (var i = 0; i < els.length; i++) {
      var left = Math.max(0, Math.floor((Date.parse(els[i].getAttribute("data-expires")) - now) / 1000));
      els[i].textContent = Math.floor(left / 60) + ":" + pad(left % 60);
      if (left < 300) { els[i].classList.add("soon"); }
    }
  }
  setInterval(tick, 1000);
})();
