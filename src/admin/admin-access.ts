import type { FastifyReply, FastifyRequest } from 'fastify';
import type {} from '@fastify/cookie';
import type { Config } from '../config.js';
import { HttpError } from '../errors.js';
import { isLocalRequest } from '../http/api-access.js';
import { newNonce, safeEqual, type CookieSigner } from './admin-session.js';

/** Who a request to the dashboard or the admin API is from. */
export type AdminPrincipal =
  | { via: 'session'; subject: string; nonce: string }
  /** `Authorization: Bearer $ADMIN_TOKEN` or Basic with the username and password: not sent by browsers on their own, so no CSRF check. */
  | { via: 'header'; subject: string }
  /** No credentials configured, and the request comes from this machine. */
  | { via: 'loopback' };

export type AccessRefusal = 'unauthenticated' | 'not-local' | 'bad-credentials';

/** Sessions end this long after signing in. */
export const sessionLifetimeMs = 12 * 3600_000;
/** The anonymous browser cookie that carries the login form's CSRF binding. */
const browserCookieLifetimeMs = 2 * 3600_000;

/**
 * Who may see the dashboard and the admin API, the way `api-access.ts` guards
 * `/tts/stream`: with `ADMIN_TOKEN` (or `ADMIN_USERNAME` + `ADMIN_PASSWORD`)
 * set, a session cookie from the login page or the credentials in an
 * `Authorization` header; without them, only requests from this machine.
 */
export class AdminAccess {
  readonly secureCookies: boolean;
  readonly sessionCookie: string;
  readonly browserCookie: string;
  private readonly publicOrigin: string;
  private readonly publicHost: string;

  constructor(
    private readonly admin: Config['admin'],
    publicUrl: string,
    private readonly signer: CookieSigner,
  ) {
    const url = new URL(publicUrl);
    this.publicOrigin = url.origin;
    this.publicHost = url.hostname;
    // Browsers keep Secure cookies only over https (and on localhost); the __Host- prefix pins them to this host and path /.
    this.secureCookies = url.protocol === 'https:';
    this.sessionCookie = this.secureCookies ? '__Host-callme_session' : 'callme_session';
    this.browserCookie = this.secureCookies ? '__Host-callme_browser' : 'callme_browser';
  }

  get configured(): boolean {
    return Boolean(this.admin.token || this.admin.password);
  }

  get acceptsToken(): boolean {
    return Boolean(this.admin.token);
  }

  get acceptsPassword(): boolean {
    return Boolean(this.admin.username && this.admin.password);
  }

  authenticate(request: FastifyRequest): AdminPrincipal | AccessRefusal {
    if (!this.configured) {
      // A page that rebinds its own domain name to 127.0.0.1 would pass the loopback test: insist on a name that means this machine.
      return isLocalRequest(request) && this.trustedHost(request) ? { via: 'loopback' } : 'not-local';
    }
    const header = request.headers.authorization;
    if (header) {
      const subject = this.checkAuthorizationHeader(header);
      return subject ? { via: 'header', subject } : 'bad-credentials';
    }
    const session = this.signer.verify(request.cookies[this.sessionCookie]);
    if (session?.kind === 'session') return { via: 'session', subject: session.subject, nonce: session.nonce };
    return 'unauthenticated';
  }

  /** The operator's name when the login form's fields are right. */
  checkLogin(fields: { token?: string; username?: string; password?: string }): string | undefined {
    if (this.admin.token && fields.token && safeEqual(fields.token.trim(), this.admin.token)) return 'token';
    if (this.acceptsPassword && fields.username && fields.password) {
      // Both compared, always, so the time taken says nothing about which was wrong.
      const userOk = safeEqual(fields.username.trim(), this.admin.username!);
      const passwordOk = safeEqual(fields.password, this.admin.password!);
      if (userOk && passwordOk) return this.admin.username;
    }
    return undefined;
  }

  startSession(reply: FastifyReply, subject: string): void {
    const value = this.signer.sign({ kind: 'session', subject, nonce: newNonce(), expiresAt: Date.now() + sessionLifetimeMs });
    reply.setCookie(this.sessionCookie, value, this.cookieOptions(sessionLifetimeMs));
    reply.clearCookie(this.browserCookie, this.cookieOptions(0));
  }

  endSession(reply: FastifyReply): void {
    reply.clearCookie(this.sessionCookie, this.cookieOptions(0));
  }

  /**
   * The CSRF token for forms on the page being rendered: bound to the session,
   * or, before signing in, to a signed browser cookie set now if missing.
   */
  csrfToken(request: FastifyRequest, reply: FastifyReply, principal?: AdminPrincipal): string {
    if (principal?.via === 'session') return this.signer.csrfToken(principal.nonce);
    const existing = this.signer.verify(request.cookies[this.browserCookie]);
    if (existing?.kind === 'browser' && existing.expiresAt - Date.now() > browserCookieLifetimeMs / 2) {
      return this.signer.csrfToken(existing.nonce);
    }
    const nonce = newNonce();
    reply.setCookie(
      this.browserCookie,
      this.signer.sign({ kind: 'browser', nonce, expiresAt: Date.now() + browserCookieLifetimeMs }),
      this.cookieOptions(browserCookieLifetimeMs),
    );
    return this.signer.csrfToken(nonce);
  }

  /**
   * Every POST/PUT/PATCH/DELETE: from a page of this server (Origin, or
   * Referer when a browser sends no Origin), carrying the CSRF token of the
   * session or browser cookie it came with. Header-authenticated calls are exempt.
   */
  checkStateChange(request: FastifyRequest, principal: AdminPrincipal | undefined): void {
    if (principal?.via === 'header') return;
    if (!this.sameOrigin(request)) throw new HttpError('forbidden', 'cross-site request refused: it must come from a page of this server');
    const nonce = principal?.via === 'session' ? principal.nonce : this.browserNonce(request);
    const body = request.body as Record<string, unknown> | undefined;
    const given = request.headers['x-csrf-token'] ?? (body && typeof body === 'object' ? body._csrf : undefined);
    if (!nonce || !this.signer.checkCsrf(nonce, given)) {
      throw new HttpError('forbidden', 'missing or stale CSRF token: reload the page and try again');
    }
  }

  private browserNonce(request: FastifyRequest): string | undefined {
    const value = this.signer.verify(request.cookies[this.browserCookie]);
    return value?.kind === 'browser' ? value.nonce : undefined;
  }

  private sameOrigin(request: FastifyRequest): boolean {
    let origin = request.headers.origin;
    if (!origin && request.headers.referer) {
      try {
        origin = new URL(request.headers.referer).origin;
      } catch {
        return false;
      }
    }
    if (!origin || origin === 'null') return false;
    const own = request.headers.host ? `${request.protocol}://${request.headers.host}` : undefined;
    return origin === this.publicOrigin || origin === own;
  }

  private trustedHost(request: FastifyRequest): boolean {
    const host = (request.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
    return host === 'localhost' || host.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === this.publicHost;
  }

  private checkAuthorizationHeader(header: string): string | undefined {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (bearer) return this.admin.token && safeEqual(bearer[1], this.admin.token) ? 'token' : undefined;
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return undefined;
      return this.checkLogin({ username: decoded.slice(0, colon), password: decoded.slice(colon + 1) });
    }
    return undefined;
  }

  private cookieOptions(maxAgeMs: number) {
    return {
      path: '/',
      httpOnly: true,
      secure: this.secureCookies,
      sameSite: 'strict' as const,
      maxAge: Math.floor(maxAgeMs / 1000),
    };
  }
}
