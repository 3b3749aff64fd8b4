// vpr-bench leaderboard pages: sortable columns and filters, no framework, no network.
// The view's state is kept in the URL fragment (#sort=R@1:asc&protocol=...&trained=...), so a
// sorted or filtered view can be bookmarked and linked.
"use strict";

(function () {
  var errors = [];
  window.addEventListener("error", function (event) {
    errors.push(String(event.message));
    document.documentElement.setAttribute("data-errors", errors.join(" | "));
  });

  function cellValue(row, column, numeric) {
    var cell = row.cells[column];
    var raw = cell ? cell.getAttribute("data-value") : "";
    if (raw === null || raw === "") {
      return null; // missing values sort last in both directions
    }
    if (numeric) {
      var number = parseFloat(raw);
      return isNaN(number) ? null : number;
    }
    return raw.toLowerCase();
  }

  function sortTable(table, column, descending) {
    var header = table.tHead.rows[0].cells[column];
    var numeric = header.getAttribute("data-type") === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, index) {
      return { row: row, index: index, value: cellValue(row, column, numeric) };
    });
    keyed.sort(function (a, b) {
      if (a.value === null || b.value === null) {
        if (a.value === b.value) {
          return a.index - b.index;
        }
        return a.value === null ? 1 : -1;
      }
      if (a.value < b.value) {
        return descending ? 1 : -1;
      }
      if (a.value > b.value) {
        return descending ? -1 : 1;
      }
      return a.index - b.index; // stable: ties keep the page's order
    });
    keyed.forEach(function (item) {
      body.appendChild(item.row);
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  function readState() {
    var state = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var at = part.indexOf("=");
      if (at > 0) {
        state[decodeURIComponent(part.slice(0, at))] = decodeURIComponent(part.slice(at + 1));
      }
    });
    return state;
  }

  function writeState(state) {
    var parts = [];
    Object.keys(state).sort().forEach(function (key) {
      if (state[key]) {
        parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(state[key]));
      }
    });
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (history.replaceState) {
      history.replaceState(null, "", location.pathname + location.search + hash);
    }
  }

  function headerName(cell) {
    return cell.textContent.trim();
  }

  function applyFilters(state) {
    var protocol = state.protocol || "";
    var trained = state.trained || "";
    Array.prototype.forEach.call(document.querySelectorAll("section.table"), function (section) {
      section.hidden = Boolean(protocol) && section.getAttribute("data-protocol") !== protocol;
    });
    Array.prototype.forEach.call(document.querySelectorAll("table.board tbody tr"), function (row) {
      row.hidden = Boolean(trained) && row.getAttribute("data-trained-on") !== trained;
    });
  }

  function setUp() {
    var state = readState();
    Array.prototype.forEach.call(document.querySelectorAll("table.board"), function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell, column) {
        var button = cell.querySelector("button");
        button.addEventListener("click", function () {
          var current = cell.getAttribute("aria-sort");
          var numeric = cell.getAttribute("data-type") === "num";
          // First click: numbers high to low, text A to Z; a second click reverses.
          var descending = current ? current === "ascending" : numeric;
          sortTable(table, column, descending);
          state.sort = headerName(cell) + ":" + (descending ? "desc" : "asc");
          writeState(state);
        });
      });
    });
    [["filter-protocol", "protocol"], ["filter-trained", "trained"]].forEach(function (pair) {
      var select = document.getElementById(pair[0]);
      if (!select) {
        return;
      }
      if (state[pair[1]]) {
        select.value = state[pair[1]];
      }
      select.addEventListener("change", function () {
        state[pair[1]] = select.value;
        applyFilters(state);
        writeState(state);
      });
    });
    applyFilters(state);
    if (state.sort) {
      var at = state.sort.lastIndexOf(":");
      var name = at > 0 ? state.sort.slice(0, at) : state.sort;
      var descending = at > 0 && state.sort.slice(at + 1) === "desc";
      Array.prototype.forEach.call(document.querySelectorAll("table.board"), function (table) {
        Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell, column) {
          if (headerName(cell) === name) {
            sortTable(table, column, descending);
          }
        });
      });
    }
    document.documentElement.setAttribute("data-ready", "true");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
})();
