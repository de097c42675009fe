import type { FastifyRequest } from 'fastify';
import type { LiveFeed } from '../dashboard/live-feed.js';
import type { Services } from '../services.js';
import type { AdminAccess, AdminPrincipal } from './admin-access.js';
import type { AdminRepository } from './admin-repository.js';
import type { CallViews } from './call-views.js';
import type { LoginThrottle } from './login-throttle.js';
import type { PriceTable } from './pricing.js';

/** What the dashboard's pages and the admin API share, built once in `registerAdminRoutes`. */
export interface AdminContext {
  services: Services;
  access: AdminAccess;
  repository: AdminRepository;
  views: CallViews;
  prices: PriceTable;
  liveFeed: LiveFeed;
  loginThrottle: LoginThrottle;
  /** Open server-sent event streams, each with the function that ends it (called when the server closes). */
  liveStreams: Set<() => void>;
  /** Who the request is from; set by the access hook before any admin route runs. */
  principal(request: FastifyRequest): AdminPrincipal | undefined;
}

/** Calls not ended that started longer ago than this missed their final status callback: not live. */
export const liveWindowHours = 4;
