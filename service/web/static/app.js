// techmatch workbench: the little script the pages need beside htmx.
// An htmx request that fails shows its reason at the top of the page instead of failing silently.
document.addEventListener("htmx:responseError", function (event) {
  var box = document.getElementById("htmx-error");
  if (!box) return;
  var status = event.detail.xhr.status;
  var text = status === 403 ? "操作未执行：页面已过期或没有权限，请刷新页面后重试。"
    : status === 404 ? "操作未执行：记录不存在或已被删除。"
    : "操作未执行（" + status + "），请稍后重试。";
  box.textContent = text;
  box.hidden = false;
  window.scrollTo({ top: 0, behavior: "smooth" });
});
document.addEventListener("htmx:sendError", function () {
  var box = document.getElementById("htmx-error");
  if (box) { box.textContent = "无法连接服务器，请检查网络后重试。"; box.hidden = false; }
});
