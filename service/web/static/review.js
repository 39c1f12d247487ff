// techmatch review page: keyboard shortcuts for the decision buttons (1 可转化, 2 不可转化, 3 跳过, N the note).
// Loaded as a file (no inline script: the pages run under a Content-Security-Policy without 'unsafe-inline').
document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  var target = event.target;
  var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable);
  if (typing) {
    if (event.key === "Escape") target.blur();
    return;
  }
  var form = document.querySelector("form.decide-form");
  if (!form) return;
  if (event.key === "n" || event.key === "N") {
    var note = form.querySelector("input[name=note]");
    if (note) { event.preventDefault(); note.focus(); }
    return;
  }
  var button = form.querySelector('button[data-key="' + event.key + '"]');
  if (button && !form.dataset.sent) {
    event.preventDefault();
    form.dataset.sent = "1";  // one decision per result, however fast the keys come
    button.click();
  }
});
