// keyservice console: the one script, for the copy button of a secret
// shown once. Everything else works without it.
document.addEventListener("click", function (e) {
  var b = e.target.closest("button[data-copy]");
  if (!b) return;
  var field = document.getElementById(b.getAttribute("data-copy"));
  var said = document.getElementById("copied");
  var done = function (msg) { if (said) said.textContent = msg; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(
      function () { done("Copied."); },
      function () { field.select(); done("Select and copy it by hand."); });
  } else {
    field.select();
    done(document.execCommand && document.execCommand("copy") ? "Copied." : "Select and copy it by hand.");
  }
});
