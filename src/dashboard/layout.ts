import type { AdminPrincipal } from '../admin/admin-access.js';
import { html, type SafeHtml } from './html.js';

export type DashboardSection = 'calls' | 'live' | 'analytics' | 'assistants' | 'talk' | 'reservations';

export interface PageOptions {
  title: string;
  section?: DashboardSection;
  principal?: AdminPrincipal;
  /** For the sign-out form. */
  csrfToken?: string;
  body: SafeHtml;
  /** Scripts of /dashboard/assets to load after the body, in order. */
  scripts?: string[];
}

const sections: Array<{ id: DashboardSection; label: string; href: string }> = [
  { id: 'calls', label: 'Calls', href: '/dashboard/calls' },
  { id: 'live', label: 'Live', href: '/dashboard/live' },
  { id: 'reservations', label: 'Reservations', href: '/dashboard/reservations' },
  { id: 'analytics', label: 'Analytics', href: '/dashboard/analytics' },
  { id: 'assistants', label: 'Assistants', href: '/dashboard/assistants' },
  { id: 'talk', label: 'Talk', href: '/dashboard/talk' },
];

/** The page around every dashboard view: navigation, who is signed in, the sign-out form. */
export function layout(options: PageOptions): string {
  const { principal } = options;
  const who =
    principal?.via === 'session'
      ? html`<span class="who">${principal.subject === 'token' ? 'Signed in with the admin token' : principal.subject}</span>
          <form method="post" action="/dashboard/logout" class="logout">
            <input type="hidden" name="_csrf" value="${options.csrfToken ?? ''}">
            <button type="submit" class="button button-ghost">Sign out</button>
          </form>`
      : principal?.via === 'loopback'
        ? html`<span class="who" title="No ADMIN_TOKEN is set: the dashboard answers only this machine">Local access</span>`
        : html``;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${options.title} · callme</title>
<link rel="icon" href="/dashboard/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
</head>
<body>
<header class="topbar">
  <a class="brand" href="/dashboard/calls"><span class="brand-mark">☎</span> callme</a>
  <nav>${options.section !== undefined || principal ? sections.map((section) => html`<a href="${section.href}"${section.id === options.section ? html` class="active" aria-current="page"` : html``}>${section.label}</a>`) : html``}</nav>
  <div class="session">${who}</div>
</header>
<main>
${options.body}
</main>
<script src="/dashboard/assets/dashboard.js"></script>
${(options.scripts ?? []).map((script) => html`<script src="/dashboard/assets/${script}"></script>`)}
</body>
</html>`.value;
}
