// A click anywhere on a row of the calls table opens that call.
(() => {
  const table = document.querySelector('table.calls');
  if (!table) return;
  table.addEventListener('click', (event) => {
    if (event.target.closest('a, button, input, select')) return;
    const link = event.target.closest('tr')?.querySelector('a.row-link');
    if (link) window.location.assign(link.href);
  });
})();
