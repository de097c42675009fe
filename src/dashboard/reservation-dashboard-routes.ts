import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AdminContext } from '../admin/admin-context.js';
import {
  bookingProfiles,
  bookingToday,
  cancelReservation,
  changeReservation,
  loadReservationPage,
  parseReservationQuery,
  reservationServices,
} from '../admin/reservation-api-routes.js';
import { HttpError } from '../errors.js';
import { reservationsPage, type ReservationFilterForm } from './reservations-page.js';

type FilterQuery = ReservationFilterForm & { done?: string; id?: string };

/** Where a form sends the reader back to: the list they were on, never anywhere else. */
function safeBack(back: unknown): string {
  return typeof back === 'string' && /^\/dashboard\/reservations(\?[\w\-=&%.+]*)?$/.test(back) ? back : '/dashboard/reservations';
}

function formOf(query: FilterQuery, today: string): ReservationFilterForm {
  // No `date` at all opens today; an empty `date` lists every day.
  return { date: query.date === undefined ? today : query.date, status: query.status, profile: query.profile, name: query.name, phone: query.phone };
}

/**
 * The reservations page: a day's bookings, and forms to change or cancel
 * them. Forms post back here (with the CSRF token every dashboard form
 * carries) and redirect to the list they came from.
 */
export async function registerReservationDashboardRoutes(app: FastifyInstance, context: AdminContext): Promise<void> {
  const { book, repository } = reservationServices(context);

  const render = async (request: FastifyRequest, reply: FastifyReply, query: FilterQuery, message: { notice?: string; error?: string }, status = 200) => {
    const today = bookingToday(context);
    const form = formOf(query, today);
    const principal = context.principal(request);
    // Every POST is CSRF-checked, local access included (it has no session): the forms always carry a token.
    const csrfToken = context.access.csrfToken(request, reply, principal);
    const common = { principal, csrfToken, form, today, profiles: bookingProfiles(context), ...message };
    try {
      const page = await loadReservationPage(context, repository, parseReservationQuery({ ...form, pageSize: 200 }));
      return reply.code(status).type('text/html; charset=utf-8').send(reservationsPage({ ...common, page }));
    } catch (error) {
      if (!(error instanceof HttpError) || error.code !== 'invalid_request') throw error;
      return reply.code(400).type('text/html; charset=utf-8').send(reservationsPage({ ...common, error: error.message }));
    }
  };

  app.get<{ Querystring: FilterQuery }>('/dashboard/reservations', async (request, reply) => {
    const { done, id } = request.query;
    const notice = done === 'changed' ? `Reservation ${id} changed.` : done === 'cancelled' ? `Reservation ${id} cancelled.` : undefined;
    return render(request, reply, request.query, { notice: notice && /^\d+$/.test(id ?? '') ? notice : undefined });
  });

  const afterPost = async (
    request: FastifyRequest<{ Params: { id: string }; Body: Record<string, unknown> }>,
    reply: FastifyReply,
    done: 'changed' | 'cancelled',
    work: () => Promise<{ id: number }>,
  ) => {
    const back = safeBack(request.body?.back);
    try {
      const reservation = await work();
      const separator = back.includes('?') ? '&' : '?';
      return reply.redirect(`${back}${separator}done=${done}&id=${reservation.id}`, 303);
    } catch (error) {
      if (!(error instanceof HttpError) || !['conflict', 'invalid_request', 'not_found'].includes(error.code)) throw error;
      // The list stays as it was, with the reason (and the free times nearby) above it.
      const query = Object.fromEntries(new URL(back, 'http://local').searchParams) as FilterQuery;
      return render(request, reply, query, { error: `Reservation ${request.params.id} was not ${done}: ${error.message}` }, error.status);
    }
  };

  app.post<{ Params: { id: string }; Body: Record<string, unknown> }>('/dashboard/reservations/:id', async (request, reply) =>
    afterPost(request, reply, 'changed', () => changeReservation(context, book, request.params.id, request.body, 'dashboard')),
  );

  app.post<{ Params: { id: string }; Body: Record<string, unknown> }>('/dashboard/reservations/:id/cancel', async (request, reply) =>
    afterPost(request, reply, 'cancelled', () => cancelReservation(context, book, request.params.id, 'dashboard')),
  );
}
