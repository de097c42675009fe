// Shows every <time data-local> in the reader's own time zone (the page says UTC without scripts).
(() => {
  const formats = {
    datetime: new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }),
    time: new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' }),
  };
  const localize = (root) => {
    for (const element of root.querySelectorAll('time[data-local]')) {
      const moment = new Date(element.dateTime);
      if (Number.isNaN(moment.getTime())) continue;
      element.title = element.dateTime;
      element.textContent = (formats[element.dataset.local] ?? formats.datetime).format(moment);
    }
  };
  localize(document);
  window.callme = { localize, formats };
})();
