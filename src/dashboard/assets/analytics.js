// Draws the analytics page's charts from the report embedded in the page.
(() => {
  const report = JSON.parse(document.getElementById('analytics-data').textContent);
  const Chart = window.Chart;
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = '#6b7280';
  Chart.defaults.plugins.legend.labels.boxWidth = 12;

  const colors = { primary: '#4f46e5', red: '#ef4444', amber: '#f59e0b', green: '#10b981', sky: '#0ea5e9', slate: '#94a3b8', violet: '#8b5cf6' };
  const dayLabel = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
  const days = report.days.map((day) => dayLabel.format(new Date(`${day}T00:00:00Z`)));
  const money = (value) => (value >= 1 ? `$${value.toFixed(2)}` : `$${value.toFixed(value === 0 ? 0 : 3)}`);
  const axis = (title, extra = {}) => ({ title: { display: true, text: title }, grid: { color: '#eef0f4' }, beginAtZero: true, ...extra });
  const dayAxis = { title: { display: true, text: 'Day (UTC)' }, grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } };
  const draw = (id, config) => {
    const canvas = document.getElementById(id);
    if (canvas) new Chart(canvas, config);
  };
  const wholeNumbers = { precision: 0 };

  draw('chart-calls', {
    type: 'bar',
    data: {
      labels: days,
      datasets: [
        { label: 'Answered', data: report.callsPerDay.map((calls, index) => calls - report.failedPerDay[index]), backgroundColor: colors.primary, borderRadius: 3, stack: 'calls' },
        { label: 'Failed', data: report.failedPerDay, backgroundColor: colors.red, borderRadius: 3, stack: 'calls' },
      ],
    },
    options: { scales: { x: { ...dayAxis, stacked: true }, y: axis('Calls', { stacked: true, ticks: wholeNumbers }) } },
  });

  const outcomeColors = {
    'details-collected': colors.green, completed: colors.sky, 'hung-up': colors.amber, 'no-input': colors.slate,
    transferred: colors.violet, failed: colors.red, missed: '#f97316', 'in-progress': colors.primary, unknown: '#cbd5e1',
  };
  draw('chart-outcomes', {
    type: 'doughnut',
    data: {
      labels: report.outcomes.map((outcome) => outcome.label),
      datasets: [{ data: report.outcomes.map((outcome) => outcome.calls), backgroundColor: report.outcomes.map((outcome) => outcomeColors[outcome.outcome] ?? colors.slate), borderWidth: 2 }],
    },
    options: { cutout: '58%', plugins: { legend: { position: 'right' } } },
  });

  draw('chart-latency', {
    type: 'line',
    data: {
      labels: days,
      datasets: [
        { label: 'p50', data: report.timeToFirstAudio.p50Ms, borderColor: colors.primary, backgroundColor: colors.primary, spanGaps: true, tension: 0.25, pointRadius: 3 },
        { label: 'p95', data: report.timeToFirstAudio.p95Ms, borderColor: colors.amber, backgroundColor: colors.amber, spanGaps: true, tension: 0.25, pointRadius: 3, borderDash: [5, 4] },
      ],
    },
    options: { scales: { x: dayAxis, y: axis('Milliseconds') }, plugins: { legend: { labels: { usePointStyle: true, pointStyle: 'line' } }, tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${item.formattedValue} ms` } } } },
  });

  draw('chart-durations', {
    type: 'bar',
    data: { labels: report.durationDistribution.map((bucket) => bucket.label), datasets: [{ label: 'Calls', data: report.durationDistribution.map((bucket) => bucket.calls), backgroundColor: colors.sky, borderRadius: 3 }] },
    options: { plugins: { legend: { display: false } }, scales: { x: { title: { display: true, text: 'Duration' }, grid: { display: false } }, y: axis('Calls', { ticks: wholeNumbers }) } },
  });

  draw('chart-cost', {
    type: 'bar',
    data: {
      labels: days,
      datasets: [
        { label: 'OpenAI', data: report.costPerDay.openai, backgroundColor: colors.green, borderRadius: 3, stack: 'cost' },
        { label: 'Twilio', data: report.costPerDay.twilio, backgroundColor: colors.red, borderRadius: 3, stack: 'cost' },
      ],
    },
    options: {
      scales: { x: { ...dayAxis, stacked: true }, y: axis(`Cost (${report.currency})`, { stacked: true, ticks: { callback: (value) => money(Number(value)) } }) },
      plugins: { tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${money(item.raw)}` } } },
    },
  });

  const confidenceColor = (index) => (index < 5 ? colors.red : index < 8 ? colors.amber : colors.green);
  draw('chart-confidence', {
    type: 'bar',
    data: {
      labels: report.confidenceDistribution.map((bucket) => bucket.label),
      datasets: [{ label: 'Caller turns', data: report.confidenceDistribution.map((bucket) => bucket.turns), backgroundColor: report.confidenceDistribution.map((_, index) => confidenceColor(index)), borderRadius: 3 }],
    },
    options: { plugins: { legend: { display: false } }, scales: { x: { title: { display: true, text: 'Confidence' }, grid: { display: false } }, y: axis('Caller turns', { ticks: wholeNumbers }) } },
  });

  draw('chart-failures', {
    type: 'bar',
    data: {
      labels: report.failureReasons.length ? report.failureReasons.map((reason) => reason.reason) : ['No failures'],
      datasets: [{ label: 'Occurrences', data: report.failureReasons.length ? report.failureReasons.map((reason) => reason.count) : [0], backgroundColor: colors.red, borderRadius: 3 }],
    },
    options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: axis('Occurrences', { ticks: wholeNumbers }), y: { grid: { display: false } } } },
  });
})();
