// The staff preview page: fit the email frames to their content, point at findings,
// and reload when the server has built a new version.
(function () {
  "use strict";
  var version = document.body.dataset.version;
  var status = document.getElementById("live-status");
  var gone = document.getElementById("server-gone");
  var findings = JSON.parse(document.getElementById("findings-data").textContent || "[]");
  var frames = Array.prototype.slice.call(document.querySelectorAll("iframe.email-frame"));
  var SCROLL_KEY = "newsletter-preview-scroll";
  var OUTLINE = "[data-nl-finding]{outline:3px solid #d0312d!important;outline-offset:2px}" +
    "mark.nl-finding{background:#ffe45c!important;color:inherit!important}" +
    ".nl-finding-active{outline-color:#0b57d0!important;outline-width:4px!important}";

  // Each frame is as tall as its email, so only the page scrolls and the frame's
  // width stays exactly the device width (no scrollbar eating into it).
  function fit(frame) {
    var doc = frame.contentDocument;
    if (!doc || !doc.documentElement) return;
    var height = Math.ceil(doc.documentElement.scrollHeight);
    if (height > frame.offsetHeight) frame.style.height = height + "px";
  }

  // The finding's own words are highlighted inside its marked element, or anywhere
  // in the email when the check named no line; a text node at a time.
  function markText(doc, root, finding) {
    var needle = (finding.text || "").trim().toLowerCase();
    if (needle.length < 3 || needle.length > 300 || !root) return false;
    var walker = doc.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (var node = walker.nextNode(); node; node = walker.nextNode()) {
      var at = node.data.toLowerCase().indexOf(needle);
      if (at < 0) continue;
      var hit = node.splitText(at);
      hit.splitText(needle.length);
      var mark = doc.createElement("mark");
      mark.className = "nl-finding";
      if (!finding.marked) mark.setAttribute("data-nl-finding", String(finding.number));
      hit.parentNode.replaceChild(mark, hit);
      mark.appendChild(hit);
      return true;
    }
    return false;
  }

  function markedElement(doc, number) {
    var all = doc.querySelectorAll("[data-nl-finding]");
    for (var i = 0; i < all.length; i++) {
      if (all[i].getAttribute("data-nl-finding").split(" ").indexOf(String(number)) >= 0) return all[i];
    }
    return null;
  }

  function decorate(frame) {
    var doc = frame.contentDocument;
    if (!doc || !doc.head || !findings.length) return;
    var style = doc.createElement("style");
    style.textContent = OUTLINE;
    doc.head.appendChild(style);
    findings.forEach(function (finding) {
      markText(doc, finding.marked ? markedElement(doc, finding.number) : doc.body, finding);
    });
  }

  function placeOf(number) {
    var frame = document.getElementById("desktop-frame");
    var doc = frame && frame.contentDocument;
    return doc ? markedElement(doc, number) : null;
  }

  function enableButtons() {
    document.querySelectorAll("button.show-in-email").forEach(function (button) {
      var number = button.dataset.finding;
      if (!placeOf(number)) return;  // about the subject or headers: no place in the body
      button.hidden = false;
      button.addEventListener("click", function () {
        var el = placeOf(number);
        var frame = document.getElementById("desktop-frame");
        document.querySelectorAll(".nl-finding-active").forEach(function (e) { e.classList.remove("nl-finding-active"); });
        el.classList.add("nl-finding-active");
        var top = frame.getBoundingClientRect().top + window.scrollY + el.getBoundingClientRect().top - window.innerHeight / 3;
        window.scrollTo({ top: Math.max(top, 0), behavior: "smooth" });
      });
    });
  }

  var waiting = frames.length;
  function frameReady(frame) {
    decorate(frame);
    fit(frame);
    var doc = frame.contentDocument;
    if (doc) {
      Array.prototype.forEach.call(doc.images, function (img) { img.addEventListener("load", function () { fit(frame); }); });
    }
    waiting -= 1;
    if (waiting === 0) allReady();
  }

  function allReady() {
    enableButtons();
    var saved = sessionStorage.getItem(SCROLL_KEY);
    if (saved !== null) {
      sessionStorage.removeItem(SCROLL_KEY);
      window.scrollTo(0, parseInt(saved, 10) || 0);
    }
    document.body.dataset.ready = "yes";
  }

  frames.forEach(function (frame) {
    var doc = frame.contentDocument;
    if (doc && doc.readyState === "complete" && doc.URL.indexOf("/email.html") >= 0) frameReady(frame);
    else frame.addEventListener("load", function () { frameReady(frame); }, { once: true });
  });
  if (!frames.length) allReady();

  // The server holds this request until a newer build exists (or 25 s pass), so a save
  // shows as soon as it is built; an answer with the same version just asks again.
  function poll() {
    fetch(versionUrl + "?after=" + encodeURIComponent(version), { cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        gone.hidden = true;
        if (status) status.classList.remove("is-gone");
        if (data.version !== version) {
          sessionStorage.setItem(SCROLL_KEY, String(window.scrollY));
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 0);
      })
      .catch(function () {
        gone.hidden = false;
        if (status) status.classList.add("is-gone");
        window.setTimeout(poll, 2000);
      });
  }
  var versionUrl = document.body.dataset.versionUrl;  // absent on the staff pages: they do not watch files
  if (versionUrl) window.setTimeout(poll, 0);
})();
