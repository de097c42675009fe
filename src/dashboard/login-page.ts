import { html, type SafeHtml } from './html.js';
import { layout } from './layout.js';

export interface LoginPageOptions {
  acceptsToken: boolean;
  acceptsPassword: boolean;
  csrfToken: string;
  /** Where to go after signing in (a dashboard path). */
  next: string;
  error?: string;
}

/** The sign-in form: username and password, the admin token, or both, as configured. */
export function loginPage(options: LoginPageOptions): string {
  const passwordFields = options.acceptsPassword
    ? html`<label>Username <input name="username" autocomplete="username" autofocus></label>
        <label>Password <input name="password" type="password" autocomplete="current-password"></label>`
    : html``;
  const tokenField = options.acceptsToken
    ? html`${options.acceptsPassword ? html`<div class="or"><span>or</span></div>` : html``}
        <label>Admin token <input name="token" type="password" autocomplete="off" ${options.acceptsPassword ? html`` : html`autofocus`} placeholder="ADMIN_TOKEN"></label>`
    : html``;
  return layout({
    title: 'Sign in',
    body: html`<section class="login card">
  <h1>Sign in to callme</h1>
  <p class="muted">The dashboard shows every call, its transcript, audio and cost.</p>
  ${options.error ? html`<p class="alert alert-bad" role="alert">${options.error}</p>` : html``}
  <form method="post" action="/dashboard/login" class="stack">
    <input type="hidden" name="_csrf" value="${options.csrfToken}">
    <input type="hidden" name="next" value="${options.next}">
    ${passwordFields}
    ${tokenField}
    <button type="submit" class="button">Sign in</button>
  </form>
</section>`,
  });
}

/** What a browser the dashboard will not serve sees. */
export function refusalPage(message: string, title = 'Not available'): string {
  return layout({ title, body: messageCard(title, message) });
}

export function messageCard(title: string, message: string): SafeHtml {
  return html`<section class="login card"><h1>${title}</h1><p class="alert alert-warn" role="alert">${message}</p></section>`;
}
