import '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { StreamCall } from '../conversation/media-stream-hub.js';
import type { Services } from '../services.js';
import { audioMessage, clearMessage, markMessage, parseStreamMessage } from './media-stream-messages.js';
import { isTwilioSigned } from './signature-guard.js';
import { hashStreamToken, streamTokenPattern } from './stream-tokens.js';

/** WebSocket close codes: 1008 = policy violation, 1011 = server error. */
const policyViolation = 1008;
const serverError = 1011;

declare module 'fastify' {
  interface FastifyRequest {
    /** The call a media-stream upgrade was admitted for. */
    streamCallSid?: string;
  }
}

/**
 * `wss://…/twilio/media/{token}`: a call's media stream. The upgrade is
 * refused (before any provider is contacted) unless Twilio signed it and the
 * path carries the call's unused one-time token; a second stream for a call is
 * refused too. After the upgrade, Twilio's JSON messages are turned into
 * typed events here and nowhere else.
 */
export async function registerMediaStreamRoute(app: FastifyInstance, services: Services): Promise<void> {
  const { config, repository, logger } = services;
  const wsBase = config.publicUrl.replace(/^http/, 'ws');

  const admit = async (request: FastifyRequest<{ Params: { token: string } }>, reply: FastifyReply) => {
    const refuse = (status: number, code: string, message: string) => {
      request.log.warn({ code }, `media stream refused: ${message}`);
      return reply.code(status).send({ error: { code, message, requestId: request.id } });
    };
    if (!services.streams) return refuse(503, 'not_configured', 'media streams need OPENAI_API_KEY');
    if (config.twilio.validateSignature) {
      const signature = request.headers['x-twilio-signature'];
      // Twilio signs a stream's upgrade over its wss:// URL, with no form parameters.
      if (!isTwilioSigned(services.twilioAuthToken, signature, wsBase + request.url, {})) {
        return refuse(403, 'forbidden', 'missing or invalid X-Twilio-Signature');
      }
    }
    const { token } = request.params;
    if (!streamTokenPattern.test(token)) return refuse(403, 'forbidden', 'unknown stream token');
    const callSid = await repository.useStreamToken(hashStreamToken(token), new Date());
    if (!callSid) return refuse(403, 'forbidden', 'unknown, expired or already used stream token');
    if (services.streams.isActive(callSid)) return refuse(409, 'conflict', 'this call already has a media stream');
    request.streamCallSid = callSid;
  };

  app.get<{ Params: { token: string } }>('/twilio/media/:token', { websocket: true, preValidation: admit }, (socket: WebSocket, request) => {
    const callSid = request.streamCallSid!;
    const log = logger.child({ callSid });
    let streamSid: string | undefined;
    let call: StreamCall | undefined;
    let opening: Promise<void> | undefined;

    const send = (message: string) => {
      if (socket.readyState === socket.OPEN) socket.send(message);
    };

    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const parsed = parseStreamMessage(data.toString());
      if (!parsed.ok) {
        log.warn({ error: parsed.error }, 'ignored a malformed media stream message');
        return;
      }
      const event = parsed.event;
      switch (event.type) {
        case 'stream-started': {
          if (opening) return;
          if (event.callSid !== callSid) {
            log.warn({ claimed: event.callSid }, 'media stream started for another call; closing it');
            socket.close(policyViolation, 'call mismatch');
            return;
          }
          streamSid = event.streamSid;
          opening = (async () => {
            const row = await repository.getCall(callSid);
            const profile = services.engine.profileFor(row, row?.to_number ?? undefined);
            const sid = event.streamSid;
            call = await services.streams!.open(
              { callSid, accountSid: event.accountSid, from: row?.from_number ?? undefined, to: row?.to_number ?? undefined },
              profile,
              {
                sendAudio: (frame) => send(audioMessage(sid, frame)),
                sendMark: (name) => send(markMessage(sid, name)),
                sendClear: () => send(clearMessage(sid)),
                close: () => socket.close(1000, 'conversation ended'),
              },
            );
            if (!call) socket.close(policyViolation, 'duplicate stream');
          })().catch((error) => {
            log.error({ err: error }, 'could not start the media stream call');
            socket.close(serverError, 'could not start');
          });
          return;
        }
        case 'caller-audio':
          if (event.streamSid === streamSid) void call?.hearAudio(event.audio);
          return;
        case 'digit-pressed':
          if (event.streamSid === streamSid) call?.hearDigit(event.digit);
          return;
        case 'mark-echoed':
          if (event.streamSid === streamSid) call?.markEchoed(event.name);
          return;
        case 'stream-stopped':
          call?.end();
          return;
        case 'stream-connected':
          return;
      }
    });
    socket.on('close', () => call?.end());
    socket.on('error', (error) => log.warn({ err: error }, 'media stream socket error'));
  });
}
