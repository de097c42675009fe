import { callStatuses } from './admin-queries.js';
import { reservationApiPaths, reservationApiSchemas } from './reservation-openapi.js';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const nullable = (type: string, extra: Record<string, unknown> = {}) => ({ type: [type, 'null'], ...extra });
const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = {
  '400': { $ref: '#/components/responses/InvalidRequest' },
  '401': { $ref: '#/components/responses/Unauthorized' },
  '403': { $ref: '#/components/responses/Forbidden' },
};
const dayParameter = (name: string, description: string) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema: { type: 'string', format: 'date', example: '2025-03-01' },
});

const cost = {
  type: 'object',
  description: 'US dollars. A part whose model has no price in the price table is null and named in `unpriced`.',
  required: ['llm', 'speech', 'transcription', 'telephony', 'openai', 'twilio', 'total', 'unpriced'],
  properties: {
    llm: nullable('number'),
    speech: nullable('number'),
    transcription: nullable('number'),
    telephony: { type: 'number' },
    openai: { type: 'number', description: 'Billed by OpenAI: chat, speech, OpenAI transcription.' },
    twilio: { type: 'number', description: "Billed by Twilio: call minutes, Twilio's speech recognition." },
    total: { type: 'number' },
    unpriced: { type: 'array', items: { type: 'string' } },
  },
};

const usage = {
  type: 'object',
  properties: {
    chatModel: { type: 'string' },
    promptTokens: { type: 'integer' },
    completionTokens: { type: 'integer' },
    speechModel: { type: 'string', description: "Absent when the assistant spoke with Twilio's voices." },
    ttsCharacters: { type: 'integer' },
    transcriptionModel: { type: 'string' },
    transcriptionSeconds: { type: 'integer', description: 'Estimated from the length of what the caller said.' },
    billedMinutes: { type: 'integer', description: 'Each started minute counted.' },
  },
};

const callSummary = {
  type: 'object',
  required: ['callSid', 'status', 'startedAt', 'turns', 'outcomeLabel', 'cost'],
  properties: {
    callSid: { type: 'string', example: 'CA0123456789abcdef0123456789abcdef' },
    status: { type: 'string', enum: [...callStatuses] },
    from: nullable('string', { description: 'Masked (+1555****567) when MASK_PHONE_NUMBERS is on.' }),
    to: nullable('string'),
    direction: nullable('string'),
    profileId: { type: 'string' },
    mode: { type: 'string', enum: ['webhook', 'stream', 'realtime'] },
    startedAt: { type: 'string', format: 'date-time' },
    endedAt: nullable('string', { format: 'date-time' }),
    durationSeconds: nullable('integer'),
    turns: { type: 'integer', description: 'Caller turns; the greeting is not counted.' },
    errors: { type: 'integer' },
    outcome: nullable('string', { description: 'details-collected, completed, hung-up, no-input, failed, missed, …' }),
    outcomeLabel: { type: 'string' },
    usage: ref('Usage'),
    cost: ref('Cost'),
  },
};

const turn = {
  type: 'object',
  properties: {
    seq: { type: 'integer', description: '0 is the greeting.' },
    kind: { type: 'string', enum: ['greeting', 'speech', 'silence', 'unclear', 'dtmf', 'limit'] },
    status: { type: 'string', enum: ['processing', 'completed', 'failed'] },
    caller: nullable('object', {
      properties: { text: nullable('string'), confidence: nullable('number'), at: { type: 'string', format: 'date-time' } },
    }),
    assistant: {
      type: 'object',
      properties: { text: nullable('string'), at: nullable('string', { format: 'date-time' }), mode: nullable('string'), interrupted: { type: 'boolean' } },
    },
    action: nullable('string'),
    error: nullable('object', { properties: { code: { type: 'string' }, message: nullable('string') } }),
    toolCalls: { type: 'array', items: {} },
    usage: { type: 'object', properties: { promptTokens: { type: 'integer' }, completionTokens: { type: 'integer' }, ttsCharacters: { type: 'integer' } } },
    latency: {
      type: 'object',
      properties: {
        stages: {
          type: 'array',
          items: {
            type: 'object',
            properties: { name: { type: 'string' }, label: { type: 'string' }, startMs: { type: 'number' }, endMs: { type: 'number' } },
          },
        },
        timeToFirstAudioMs: nullable('number'),
        totalMs: nullable('number'),
      },
    },
    audio: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          url: nullable('string', { description: 'Relative URL of GET /audio/{filename}; null once retention deleted it.' }),
          text: { type: 'string' },
          contentType: nullable('string'),
          durationMs: nullable('integer'),
          available: { type: 'boolean' },
          shared: { type: 'boolean', description: 'A cached phrase shared by every call.' },
        },
      },
    },
  },
};

const series = (items: unknown) => ({ type: 'array', items, description: 'One value per entry of `days`.' });

/** The OpenAPI 3.1 description of the admin API, served at `GET /api/openapi.json`. */
export function openApiDocument(serverUrl: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'callme admin API',
      version: '1',
      description:
        'Calls, transcripts, latency, usage and cost of a callme server: the data behind /dashboard. ' +
        'Send `Authorization: Bearer $ADMIN_TOKEN` (or Basic with ADMIN_USERNAME and ADMIN_PASSWORD), or the session cookie of the dashboard. ' +
        'Without credentials configured, the API answers only requests from the server\'s own machine. Days are UTC.',
    },
    servers: [{ url: serverUrl }],
    security: [{ bearerAuth: [] }, { basicAuth: [] }, { sessionCookie: [] }],
    paths: {
      '/api/calls': {
        get: {
          summary: 'Calls, newest first, a page at a time',
          parameters: [
            dayParameter('from', 'First day (UTC) of calls started, included.'),
            dayParameter('to', 'Last day (UTC) of calls started, included.'),
            { name: 'status', in: 'query', schema: { type: 'string', enum: [...callStatuses] } },
            { name: 'outcome', in: 'query', schema: { type: 'string' }, example: 'details-collected' },
            { name: 'number', in: 'query', description: "Digits found in the caller's or the called number.", schema: { type: 'string', maxLength: 32 } },
            { name: 'q', in: 'query', description: 'Text found in what the caller or the assistant said (case-insensitive).', schema: { type: 'string', maxLength: 200 } },
            { name: 'profile', in: 'query', schema: { type: 'string' } },
            { name: 'page', in: 'query', schema: { type: 'integer', minimum: 1, default: 1 } },
            { name: 'pageSize', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 25 } },
          ],
          responses: {
            '200': json(
              {
                type: 'object',
                properties: {
                  calls: { type: 'array', items: ref('CallSummary') },
                  page: { type: 'integer' },
                  pageSize: { type: 'integer' },
                  total: { type: 'integer' },
                  totalCost: ref('Cost'),
                },
              },
              'A page of calls, the number that match, and what they all cost.',
            ),
            ...errors,
          },
        },
        post: {
          summary: 'Place a call: a reminder or a confirmation, with answering-machine detection',
          description:
            'Twilio dials `to`; a person hears the purpose\'s greeting and talks to the assistant, an answering machine gets its voicemail message after the beep. ' +
            'Needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (503 otherwise); a call Twilio refuses is a 400 with its reason.',
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['to', 'purpose'],
                  properties: {
                    to: { type: 'string', example: '+15551234567' },
                    purpose: { type: 'string', description: "One of the profile's `outbound.purposes`.", example: 'confirmation' },
                    details: { type: 'string', maxLength: 300, example: 'your table for 4 on Friday at 7 pm' },
                    profile: { type: 'string', description: 'Profile id; the default profile when unset.' },
                    from: { type: 'string', description: 'Defaults to TWILIO_PHONE_NUMBER.' },
                  },
                },
              },
            },
          },
          responses: {
            '201': json(
              {
                type: 'object',
                properties: {
                  outboundId: { type: 'string' }, callSid: { type: 'string' }, status: { type: 'string' }, to: { type: 'string' }, from: { type: 'string' },
                  profile: { type: 'string' }, purpose: { type: 'string' }, greeting: { type: 'string' }, voicemail: { type: 'string' },
                },
              },
              'Twilio accepted the call; it is ringing.',
            ),
            ...errors,
          },
        },
      },
      '/api/calls/{callSid}/recordings/{recordingSid}/audio': {
        get: {
          summary: "A call recording's audio (MP3), while audio retention keeps it",
          parameters: [
            { name: 'callSid', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'recordingSid', in: 'path', required: true, schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'The audio.', content: { 'audio/mpeg': {} } }, '404': { $ref: '#/components/responses/NotFound' }, ...errors },
        },
      },
      '/api/calls/{callSid}': {
        get: {
          summary: 'One call: conversation, audio, latency, details, errors, cost',
          parameters: [{ name: 'callSid', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': json(ref('CallDetail'), 'The call.'), '404': { $ref: '#/components/responses/NotFound' }, ...errors },
        },
      },
      '/api/analytics': {
        get: {
          summary: 'Calls, durations, latency, speech confidence, cost, failures and outcomes per UTC day',
          parameters: [dayParameter('from', 'Defaults to 29 days before `to`.'), dayParameter('to', 'Defaults to today (UTC).')],
          responses: { '200': json(ref('AnalyticsReport'), 'The report.'), ...errors },
        },
      },
      '/api/live': {
        get: { summary: 'Calls in progress, each with its latest turn', responses: { '200': json(ref('LiveSnapshot'), 'The calls in progress now.'), ...errors } },
      },
      '/api/live/events': {
        get: {
          summary: 'Calls in progress as server-sent events',
          description: 'An `event: calls` with a LiveSnapshot as its data now and whenever the calls in progress change (read from the database about every second).',
          responses: { '200': { description: 'An event stream.', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors },
        },
      },
      '/api/assistants': {
        get: {
          summary: 'The assistant profiles in use, with the numbers they answer',
          responses: { '200': json({ type: 'object', properties: { assistants: { type: 'array', items: ref('Assistant') } } }, 'The profiles.'), ...errors },
        },
      },
      '/api/pricing': { get: { summary: 'The price table costs are computed with', responses: { '200': json(ref('PriceTable'), 'Prices in USD.'), ...errors } } },
      '/api/session': {
        get: {
          summary: 'Who the request is authenticated as, and the CSRF token for state-changing requests',
          responses: {
            '200': json(
              {
                type: 'object',
                properties: {
                  via: nullable('string', { enum: ['session', 'header', 'loopback', null] }),
                  subject: nullable('string'),
                  csrfToken: { type: 'string', description: 'Send as `X-CSRF-Token` (or the `_csrf` form field) with POST, PUT, PATCH and DELETE.' },
                  maskPhoneNumbers: { type: 'boolean' },
                },
              },
              'The session.',
            ),
            ...errors,
          },
        },
      },
      '/api/openapi.json': { get: { summary: 'This document', responses: { '200': json({ type: 'object' }, 'OpenAPI 3.1.') } } },
      ...reservationApiPaths,
    },
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
        basicAuth: { type: 'http', scheme: 'basic', description: 'ADMIN_USERNAME and ADMIN_PASSWORD' },
        sessionCookie: { type: 'apiKey', in: 'cookie', name: '__Host-callme_session', description: 'Set by POST /dashboard/login (named callme_session when PUBLIC_URL is not https).' },
      },
      responses: {
        InvalidRequest: json(ref('Error'), 'A query parameter is not valid; `field` names it.'),
        Unauthorized: json(ref('Error'), 'No or wrong credentials.'),
        Forbidden: json(ref('Error'), 'No credentials are configured and the request is not from this machine, or a state-changing request failed its CSRF check.'),
        NotFound: json(ref('Error'), 'No such call.'),
      },
      schemas: {
        Error: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message', 'requestId'],
              properties: { code: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' }, requestId: { type: 'string' } },
            },
          },
        },
        Cost: cost,
        Usage: usage,
        CallSummary: callSummary,
        Turn: turn,
        CallDetail: {
          allOf: [
            ref('CallSummary'),
            {
              type: 'object',
              properties: {
                language: { type: 'string' },
                assistantMode: { type: 'string', enum: ['llm', 'scripted'] },
                details: { type: 'object', additionalProperties: true, description: 'What the assistant collected (save_details).' },
                audioRetention: {
                  type: 'object',
                  properties: {
                    applied: nullable('string'),
                    expiresAt: nullable('string', { format: 'date-time' }),
                    deletedAt: nullable('string', { format: 'date-time' }),
                  },
                },
                conversation: { type: 'array', items: ref('Turn') },
                events: {
                  type: 'array',
                  items: { type: 'object', properties: { status: { type: 'string' }, sequenceNumber: nullable('integer'), at: { type: 'string', format: 'date-time' } } },
                },
              },
            },
          ],
        },
        AnalyticsReport: {
          type: 'object',
          properties: {
            range: { type: 'object', properties: { from: { type: 'string', format: 'date' }, to: { type: 'string', format: 'date' } } },
            currency: { type: 'string', const: 'USD' },
            totals: { type: 'object', additionalProperties: true },
            days: { type: 'array', items: { type: 'string', format: 'date' } },
            callsPerDay: series({ type: 'integer' }),
            failedPerDay: series({ type: 'integer' }),
            durationDistribution: { type: 'array', items: { type: 'object', properties: { label: { type: 'string' }, calls: { type: 'integer' } } } },
            timeToFirstAudio: {
              type: 'object',
              properties: { p50Ms: series(nullable('number')), p95Ms: series(nullable('number')), turns: series({ type: 'integer' }) },
            },
            confidenceDistribution: { type: 'array', items: { type: 'object', properties: { label: { type: 'string' }, turns: { type: 'integer' } } } },
            costPerDay: { type: 'object', properties: { openai: series({ type: 'number' }), twilio: series({ type: 'number' }) } },
            failureReasons: {
              type: 'array',
              items: { type: 'object', properties: { reason: { type: 'string' }, count: { type: 'integer' }, example: nullable('string') } },
            },
            outcomes: {
              type: 'array',
              items: { type: 'object', properties: { outcome: { type: 'string' }, label: { type: 'string' }, calls: { type: 'integer' } } },
            },
          },
        },
        LiveSnapshot: {
          type: 'object',
          properties: {
            at: { type: 'string', format: 'date-time' },
            calls: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  callSid: { type: 'string' },
                  from: nullable('string'),
                  to: nullable('string'),
                  profileId: { type: 'string' },
                  profileName: { type: 'string' },
                  status: { type: 'string' },
                  mode: { type: 'string' },
                  startedAt: { type: 'string', format: 'date-time' },
                  turns: { type: 'integer' },
                  details: { type: 'object', additionalProperties: true },
                  latestTurn: nullable('object', { additionalProperties: true }),
                },
              },
            },
          },
        },
        Assistant: { type: 'object', additionalProperties: true, properties: { id: { type: 'string' }, name: { type: 'string' }, phoneNumbers: { type: 'array', items: { type: 'string' } } } },
        PriceTable: { type: 'object', additionalProperties: true },
        ...reservationApiSchemas,
      },
    },
  };
}
