/* Signoff web inbox: live updates, keyboard shortcuts and the shortcut help.
 *
 * Our own small script, served from /static so the Content-Security-Policy stays
 * script-src 'self'. Everything works without it (forms post, pages reload); with it:
 * - elements with data-live-url are polled every data-live-every seconds; each
 *   [data-live-part] of the answer replaces the part of the same name when it changed,
 *   so a vote cast elsewhere shows without a reload and nothing flickers in between;
 * - j/k move through the list, Enter opens, a/r/m approve, reject, modify, ? shows help;
 *   never while typing in a field.
 */
(function () {
  "use strict";

  var status = document.getElementById("live-status");

  function announce(text) {
    if (status && text) {
      status.textContent = text;
    }
  }

  // -- live updates ----------------------------------------------------------------------

  function textOf(root, selector) {
    var found = root.querySelector(selector);
    return found ? found.textContent.replace(/\s+/g, " ").trim() : "";
  }

  function poll(region) {
    var url = region.getAttribute("data-live-url");
    var every = Math.max(parseFloat(region.getAttribute("data-live-every")) || 3, 1) * 1000;
    // Each part as the server last drew it (read before anyone clicks anything), so a part
    // is replaced only when the server's answer changes, never for a reviewer's own edits.
    var seen = {};
    region.querySelectorAll("[data-live-part]").forEach(function (part) {
      seen[part.getAttribute("data-live-part")] = part.innerHTML.trim();
    });

    function apply(html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      doc.querySelectorAll("[data-live-part]").forEach(function (fresh) {
        var name = fresh.getAttribute("data-live-part");
        var current = region.querySelector('[data-live-part="' + name + '"]');
        var drawn = fresh.innerHTML.trim();
        if (!current || seen[name] === drawn) {
          return;
        }
        seen[name] = drawn;
        var before = textOf(current, "#who-decides") || textOf(current, "#inbox-count");
        var selected = currentRowId();
        // Copy the list first: adopting a node takes it out of `fresh.childNodes`.
        var nodes = Array.prototype.slice.call(fresh.childNodes);
        current.replaceChildren.apply(current, nodes.map(function (node) {
          return document.adoptNode(node);
        }));
        var after = textOf(current, "#who-decides") || textOf(current, "#inbox-count");
        if (after && after !== before) {
          announce(after);
        }
        if (selected) {
          select(rowById(selected), false);
        }
        document.dispatchEvent(new CustomEvent("signoff:updated", { detail: { part: name } }));
      });
    }

    function tick() {
      if (document.hidden) {
        window.setTimeout(tick, every);
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.status === 401) {
            window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html) {
            apply(html);
          }
        })
        .catch(function () {
          /* offline for a moment: the next tick tries again */
        })
        .then(function () {
          window.setTimeout(tick, every);
        });
    }

    window.setTimeout(tick, every);
  }

  document.querySelectorAll("[data-live-url]").forEach(poll);

  // -- the list: j/k ----------------------------------------------------------------------

  var SELECTED = "selected";

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-list] [data-row]"));
  }

  function rowById(id) {
    return id ? document.querySelector('[data-row][data-request-id="' + id + '"]') : null;
  }

  function currentRowId() {
    var row = document.querySelector("[data-row]." + SELECTED);
    return row ? row.getAttribute("data-request-id") : null;
  }

  function select(row, focus) {
    rows().forEach(function (other) {
      other.classList.remove(SELECTED);
      other.removeAttribute("aria-current");
    });
    if (!row) {
      return;
    }
    row.classList.add(SELECTED);
    row.setAttribute("aria-current", "true");
    var link = row.querySelector("a[href]");
    if (focus && link) {
      link.focus();
    }
    if (focus) {
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function move(step) {
    var all = rows();
    if (!all.length) {
      return;
    }
    var index = all.findIndex(function (row) {
      return row.classList.contains(SELECTED);
    });
    var next = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(Math.max(index + step, 0), all.length - 1);
    select(all[next], true);
  }

  // -- the item: a/r/m ---------------------------------------------------------------------

  function press(key) {
    var button = document.querySelector('#vote-form [data-shortcut="' + key + '"]');
    if (!button) {
      return false;
    }
    if (key === "m") {
      openModify();
    } else {
      button.click();
    }
    return true;
  }

  function openModify() {
    var details = document.getElementById("modify");
    if (!details) {
      return;
    }
    details.open = true;
    var first = details.querySelector("input:not([type=hidden]), textarea");
    if (first) {
      first.focus();
    }
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("#modify-open");
    if (opener) {
      event.preventDefault();
      openModify();
    }
  });

  // Arriving from the inbox with a/r/m: focus that button, so Enter decides after a look.
  var arrived = /^#do-([arm])$/.exec(location.hash);
  if (arrived) {
    if (arrived[1] === "m") {
      openModify();
    } else {
      var target = document.querySelector('#vote-form [data-shortcut="' + arrived[1] + '"]');
      if (target) {
        target.focus();
      }
    }
  }

  // -- help ----------------------------------------------------------------------------------

  var help = document.getElementById("help");

  function showHelp() {
    if (help && !help.open) {
      help.showModal();
    }
  }

  document.querySelectorAll("[data-help-open]").forEach(function (button) {
    button.addEventListener("click", showHelp);
  });
  document.querySelectorAll("[data-help-close]").forEach(function (button) {
    button.addEventListener("click", function () {
      help.close();
    });
  });

  // -- keys ----------------------------------------------------------------------------------

  function typing(target) {
    if (!target || !target.closest) {
      return false;
    }
    return Boolean(
      target.isContentEditable ||
        target.closest("input, textarea, select, [contenteditable]") ||
        (help && help.open && target !== help && help.contains(target) && target.tagName !== "BUTTON")
    );
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (typing(event.target)) {
      return;
    }
    if (help && help.open) {
      return; // Esc closes the dialog natively; nothing else acts behind it
    }
    var key = event.key;
    var handled = true;
    if (key === "?") {
      showHelp();
    } else if (key === "j") {
      move(1);
    } else if (key === "k") {
      move(-1);
    } else if (key === "a" || key === "r" || key === "m") {
      var row = rowById(currentRowId());
      if (row) {
        var link = row.querySelector("a[href]");
        window.location.assign(link.getAttribute("href") + "#do-" + key);
      } else {
        handled = press(key);
      }
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
    }
  });
})();
