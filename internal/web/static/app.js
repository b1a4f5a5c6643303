// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The code page: count down the wait before a new code may be asked for,
  // keeping the resend button disabled until then.
  var wait = document.getElementById("resend-wait");
  if (wait) {
    var left = parseInt(wait.getAttribute("data-wait"), 10) || 0;
    var button = document.querySelector('form[action="/verify/resend"] button');
    var text = wait.textContent;
    if (button && left > 0) {
      button.disabled = true;
      var tick = setInterval(function () {
        left -= 1;
        if (left <= 0) {
          clearInterval(tick);
          button.disabled = false;
          wait.hidden = true;
          return;
        }
        wait.textContent = text.replace(/\d+/, String(left));
      }, 1000);
    }
  }
  // Deleting a film or an account asks once more.
  document.querySelectorAll("[data-confirm] form").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      var label = form.querySelector("button").textContent;
      if (!window.confirm(label + "?")) { e.preventDefault(); }
    });
  });
});
