// The Workers page's copy button: copies the one-time token to the
// clipboard. The page works without it (the token can be selected).
document.querySelectorAll("button[data-copy]").forEach(function (b) {
  b.addEventListener("click", function () {
    var el = document.getElementById(b.dataset.copy);
    if (!el || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(el.textContent).then(function () {
      b.textContent = "Copied";
      b.classList.add("copied");
    }, function () {
      b.textContent = "Select and copy";
    });
  });
});
