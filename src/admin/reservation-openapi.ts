/** The reservation part of the admin API's OpenAPI document (merged into `openapi.ts`). */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = {
  '400': { $ref: '#/components/responses/InvalidRequest' },
  '401': { $ref: '#/components/responses/Unauthorized' },
  '403': { $ref: '#/components/responses/Forbidden' },
};
const notFound = { '404': json(ref('Error'), 'No such reservation.') };
const conflict = {
  '409': json(
    ref('ReservationRefusal'),
    'Not possible as asked: the slot is full, the business is closed then, the time has passed, the party is too large, or the reservation is cancelled. `refusal.alternatives` lists free times nearby; `override: true` books anyway.',
  ),
};
const idParameter = { name: 'id', in: 'path', required: true, schema: { type: 'integer' } };
const date = { type: 'string', format: 'date', description: "The business's local day.", example: '2025-03-07' };
const time = { type: 'string', pattern: '^([01]\\d|2[0-3]):[0-5]\\d$', description: 'Local time, 24-hour.', example: '19:30' };
const override = { type: 'boolean', default: false, description: 'Book even outside the opening hours or over capacity.' };
const slot = { type: 'object', properties: { date, time } };

export const reservationApiPaths = {
  '/api/reservations': {
    get: {
      summary: 'Reservations by day and time, soonest first',
      parameters: [
        { name: 'date', in: 'query', description: 'One day.', schema: date },
        { name: 'from', in: 'query', description: 'First day, included.', schema: date },
        { name: 'to', in: 'query', description: 'Last day, included.', schema: date },
        { name: 'status', in: 'query', schema: { type: 'string', enum: ['confirmed', 'cancelled'] } },
        { name: 'profile', in: 'query', description: 'The assistant profile that took them.', schema: { type: 'string' } },
        { name: 'phone', in: 'query', description: 'Digits found in the phone number.', schema: { type: 'string', maxLength: 32 } },
        { name: 'name', in: 'query', description: 'Text found in the name (case-insensitive).', schema: { type: 'string', maxLength: 100 } },
        { name: 'page', in: 'query', schema: { type: 'integer', minimum: 1, default: 1 } },
        { name: 'pageSize', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
      ],
      responses: {
        '200': json(
          {
            type: 'object',
            properties: {
              reservations: { type: 'array', items: ref('Reservation') },
              page: { type: 'integer' },
              pageSize: { type: 'integer' },
              total: { type: 'integer' },
              guests: { type: 'integer', description: 'Guests of the confirmed reservations that match.' },
            },
          },
          'A page of reservations.',
        ),
        ...errors,
      },
    },
    post: {
      summary: 'Book a reservation (staff), checked against the opening hours and capacity',
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              required: ['name', 'date', 'time', 'partySize'],
              properties: {
                profile: { type: 'string', description: 'Needed when more than one profile takes reservations.' },
                name: { type: 'string', maxLength: 100 },
                date,
                time,
                partySize: { type: 'integer', minimum: 1 },
                phone: { type: 'string', maxLength: 32 },
                notes: { type: 'string', maxLength: 500 },
                override,
              },
            },
          },
        },
      },
      responses: { '201': json(ref('Reservation'), 'Booked.'), ...conflict, ...errors },
    },
  },
  '/api/reservations/{id}': {
    get: { summary: 'One reservation', parameters: [idParameter], responses: { '200': json(ref('Reservation'), 'The reservation.'), ...notFound, ...errors } },
    patch: {
      summary: 'Change the day, time, party size, name or notes of a reservation',
      description: 'A new day, time or party size is checked against the opening hours and capacity (the reservation itself not counted), unless `override` is set.',
      parameters: [idParameter],
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              type: 'object',
              properties: { date, time, partySize: { type: 'integer', minimum: 1 }, name: { type: 'string', maxLength: 100 }, notes: { type: 'string', maxLength: 500 }, override },
            },
          },
        },
      },
      responses: { '200': json(ref('Reservation'), 'The changed reservation.'), ...notFound, ...conflict, ...errors },
    },
  },
  '/api/reservations/{id}/cancel': {
    post: {
      summary: 'Cancel a reservation (cancelling one already cancelled changes nothing)',
      parameters: [idParameter],
      responses: { '200': json(ref('Reservation'), 'The cancelled reservation.'), ...notFound, ...errors },
    },
  },
};

export const reservationApiSchemas = {
  Reservation: {
    type: 'object',
    required: ['id', 'profileId', 'name', 'date', 'time', 'partySize', 'status', 'source'],
    properties: {
      id: { type: 'integer' },
      profileId: { type: 'string' },
      profileName: { type: 'string' },
      name: { type: 'string' },
      phone: { type: ['string', 'null'], description: 'Masked when MASK_PHONE_NUMBERS is on.' },
      date,
      weekday: { type: 'string', example: 'friday' },
      time,
      partySize: { type: 'integer' },
      notes: { type: ['string', 'null'] },
      status: { type: 'string', enum: ['confirmed', 'cancelled'] },
      source: { type: 'string', enum: ['phone', 'dashboard', 'api'], description: 'Who made or last changed it.' },
      callSid: { type: ['string', 'null'], description: 'The call that made it.' },
      createdAt: { type: 'string', format: 'date-time' },
      updatedAt: { type: 'string', format: 'date-time' },
    },
  },
  ReservationRefusal: {
    type: 'object',
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message', 'requestId'],
        properties: {
          code: { type: 'string', const: 'conflict' },
          message: { type: 'string' },
          requestId: { type: 'string' },
          refusal: {
            type: 'object',
            properties: {
              kind: { type: 'string', enum: ['closed', 'full', 'too-large'] },
              date,
              time,
              reason: { type: 'string' },
              hours: { type: 'string', description: 'When bookings are taken that day, or "closed".' },
              maxPartySize: { type: 'integer' },
              alternatives: { type: 'array', items: slot },
            },
          },
        },
      },
    },
  },
};
