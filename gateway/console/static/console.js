// callgate console: live updates from /console/stream (server-sent events of the tenant's call changes,
// authenticated by the console's cookie). On the calls list, a changed call's row is fetched again from
// the server (/console/calls/{id}/row: the same template as the page) and replaced, or prepended when it
// is new and the list is the first, unfiltered page; elsewhere a notice offers a reload. On a call's page,
// a newer version of that call shows a notice. No framework, nothing from another origin; the browser's
// EventSource reconnects by itself and resumes with Last-Event-ID.
(function () {
  "use strict";

  var live = document.querySelector("[data-live]");
  if (!live || !("EventSource" in window)) {
    return;
  }
  var mode = live.getAttribute("data-live");
  var status = document.getElementById("live-status");
  var more = document.getElementById("live-more");
  var types = [];
  try {
    types = JSON.parse(live.getAttribute("data-types") || "[]");
  } catch (ignored) {
    return;
  }
  var waiting = {};
  var source = new EventSource(live.getAttribute("data-stream"));

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function showMore() {
    if (more) {
      more.hidden = false;
    }
  }

  function version(row) {
    return parseInt(row.getAttribute("data-version") || "0", 10);
  }

  function place(id, html) {
    var holder = document.createElement("template");
    holder.innerHTML = html.trim();
    var row = holder.content.querySelector("tr");
    if (!row) {
      return;
    }
    var current = document.getElementById("row-" + id);
    if (current) {
      if (version(row) < version(current)) {
        return; // an older answer arriving late
      }
      row.classList.add("fresh");
      current.replaceWith(row);
      return;
    }
    var body = document.getElementById("calls-body");
    if (!body) {
      return;
    }
    row.classList.add("fresh");
    body.insertBefore(row, body.firstChild);
    var empty = document.getElementById("calls-empty");
    if (empty) {
      empty.hidden = true;
    }
    say("New call: " + id);
  }

  function refresh(id) {
    var known = document.getElementById("row-" + id);
    if (!known && live.getAttribute("data-prepend") !== "true") {
      showMore();
      return;
    }
    fetch("/console/calls/" + encodeURIComponent(id) + "/row", {
      credentials: "same-origin",
      headers: { accept: "text/html" },
    })
      .then(function (response) {
        if (!response.ok || response.redirected) {
          throw new Error("no row");
        }
        return response.text();
      })
      .then(function (html) {
        place(id, html);
      })
      .catch(function () {});
  }

  function changed(event) {
    var message;
    try {
      message = JSON.parse(event.data);
    } catch (ignored) {
      return;
    }
    var call = message && message.data && message.data.call;
    if (!call || typeof call.id !== "string") {
      return;
    }
    if (mode === "call") {
      if (call.id === live.getAttribute("data-call") && call.version > parseInt(live.getAttribute("data-version"), 10)) {
        showMore();
      }
      return;
    }
    if (waiting[call.id]) {
      return; // one change emits several types: fetch the row once
    }
    waiting[call.id] = window.setTimeout(function () {
      delete waiting[call.id];
      refresh(call.id);
    }, 150);
  }

  types.forEach(function (type) {
    source.addEventListener(type, changed);
  });
  source.addEventListener("open", function () {
    live.setAttribute("data-connected", "true");
  });
  source.addEventListener("error", function () {
    live.setAttribute("data-connected", "false");
    if (source.readyState === EventSource.CLOSED) {
      say("Live updates stopped. Reload the page to resume them.");
    }
  });
})();
