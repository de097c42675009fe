import { XMLParser, XMLValidator } from 'fast-xml-parser';

/** `<Say>`: text-to-speech. SSML children are flattened into `text`. */
export interface SayVerb {
  kind: 'say';
  text: string;
  voice?: string;
  language?: string;
  loop?: number;
}

/** `<Play>`: an audio URL, or DTMF tones when only `digits` is set. */
export interface PlayVerb {
  kind: 'play';
  url: string;
  loop?: number;
  digits?: string;
}

/** `<Pause>`: silence, `length` seconds (Twilio's default is 1). */
export interface PauseVerb {
  kind: 'pause';
  length: number;
}

/** What a `<Gather>` listens for. */
export type GatherInput = 'speech' | 'dtmf';

/** `<Gather>` with the attributes that change what Twilio sends back. */
export interface GatherVerb {
  kind: 'gather';
  /** Twilio's default is `dtmf` alone: a speech gather must ask for it. */
  input: GatherInput[];
  action?: string;
  method?: string;
  language?: string;
  /** `auto` or a number of seconds, kept as written. */
  speechTimeout?: string;
  timeout?: number;
  actionOnEmptyResult?: boolean;
  hints?: string;
  finishOnKey?: string;
  numDigits?: number;
  /** Only `<Say>`, `<Play>` and `<Pause>` may be nested (Twilio warning 13320 otherwise). */
  nested: Array<SayVerb | PlayVerb | PauseVerb>;
  /** Names of nested elements Twilio would skip. */
  ignored?: string[];
}

/** `<Redirect>`: fetch the next document from `url`. */
export interface RedirectVerb {
  kind: 'redirect';
  url: string;
  method?: string;
}

/** `<Hangup>`: end the call. */
export interface HangupVerb {
  kind: 'hangup';
}

/** `<Reject>`: refuse the call; as the first verb the call is never answered. */
export interface RejectVerb {
  kind: 'reject';
  reason?: string;
}

/** `<Dial>`: connect the caller to another party. */
export interface DialVerb {
  kind: 'dial';
  number?: string;
  action?: string;
  method?: string;
  timeout?: number;
  callerId?: string;
}

/** `<Connect>`: hand the call's audio to a Media Stream. */
export interface ConnectVerb {
  kind: 'connect';
  stream?: { url: string; parameters: Record<string, string> };
}

/** `<Record>`: record the caller. */
export interface RecordVerb {
  kind: 'record';
  action?: string;
  method?: string;
  maxLength?: number;
  timeout?: number;
}

/** `<Start>`: something that runs in the background while the TwiML goes on (a `<Recording>`, a `<Stream>`). */
export interface StartVerb {
  kind: 'start';
  recording?: {
    statusCallback?: string;
    method?: string;
    /** Twilio's default is `completed` alone. */
    events: string[];
    channels?: string;
  };
  /** Names of nouns other than `<Recording>` (not simulated). */
  others?: string[];
}

/** Any other element. Element names are case sensitive in TwiML: `<say>` lands here. */
export interface UnknownVerb {
  kind: 'unknown';
  name: string;
}

/** One instruction of a TwiML document, in the order Twilio runs them. */
export type TwimlVerb =
  | SayVerb
  | PlayVerb
  | PauseVerb
  | GatherVerb
  | RedirectVerb
  | HangupVerb
  | RejectVerb
  | DialVerb
  | ConnectVerb
  | RecordVerb
  | StartVerb
  | UnknownVerb;

/**
 * A document Twilio could not run. `twilioErrorCode` is the code Twilio's
 * debugger would log: 12100 (not well-formed XML) or 12102 (root is not `<Response>`).
 */
export class TwimlParseError extends Error {
  readonly code = 'twiml-invalid';
  readonly retryable = false;

  constructor(
    message: string,
    readonly twilioErrorCode: 12100 | 12102,
  ) {
    super(message);
    this.name = 'TwimlParseError';
  }
}

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
});

/** Parses a TwiML document into its verbs, keeping order and `<Gather>` nesting. */
export function parseTwiml(xml: string): TwimlVerb[] {
  const validation = XMLValidator.validate(xml);
  if (validation !== true) {
    const { msg, line } = validation.err;
    throw new TwimlParseError(`Document parse failure: ${msg} (line ${line})`, 12100);
  }
  const roots = (parser.parse(xml) as OrderedNode[]).filter((node) => {
    const name = nodeName(node);
    if (name === '?xml') return false;
    if (name === '#text') {
      if (String(node['#text']).trim() === '') return false;
      throw new TwimlParseError('Document parse failure: text outside the root element', 12100);
    }
    return true;
  });
  if (roots.length !== 1) throw new TwimlParseError('Document parse failure: expected exactly one root element', 12100);
  const root = roots[0];
  if (nodeName(root) !== 'Response') {
    throw new TwimlParseError(`The root element must be Response, not <${nodeName(root)}>`, 12102);
  }
  return elementChildren(root).map(toVerb);
}

function toVerb(node: OrderedNode): TwimlVerb {
  const name = nodeName(node);
  const attributes = node[':@'] ?? {};
  switch (name) {
    case 'Say':
      return withoutUndefined({
        kind: 'say',
        text: textOf(node),
        voice: attributes.voice,
        language: attributes.language,
        loop: numberAttribute(attributes.loop),
      });
    case 'Play':
      return withoutUndefined({
        kind: 'play',
        url: textOf(node),
        loop: numberAttribute(attributes.loop),
        digits: attributes.digits,
      });
    case 'Pause':
      return { kind: 'pause', length: numberAttribute(attributes.length) ?? 1 };
    case 'Gather':
      return toGather(node, attributes);
    case 'Redirect':
      return withoutUndefined({ kind: 'redirect', url: textOf(node), method: methodAttribute(attributes.method) });
    case 'Hangup':
      return { kind: 'hangup' };
    case 'Reject':
      return withoutUndefined({ kind: 'reject', reason: attributes.reason });
    case 'Dial':
      return toDial(node, attributes);
    case 'Connect':
      return toConnect(node);
    case 'Start':
      return toStart(node);
    case 'Record':
      return withoutUndefined({
        kind: 'record',
        action: attributes.action,
        method: methodAttribute(attributes.method),
        maxLength: numberAttribute(attributes.maxLength),
        timeout: numberAttribute(attributes.timeout),
      });
    default:
      return { kind: 'unknown', name };
  }
}

function toGather(node: OrderedNode, attributes: Record<string, string>): GatherVerb {
  const nested: GatherVerb['nested'] = [];
  const ignored: string[] = [];
  for (const child of elementChildren(node)) {
    const verb = toVerb(child);
    if (verb.kind === 'say' || verb.kind === 'play' || verb.kind === 'pause') nested.push(verb);
    else ignored.push(nodeName(child));
  }
  const input = (attributes.input ?? 'dtmf')
    .split(/\s+/)
    .filter((value): value is GatherInput => value === 'speech' || value === 'dtmf');
  return withoutUndefined({
    kind: 'gather',
    input: input.length > 0 ? input : ['dtmf'],
    action: attributes.action,
    method: methodAttribute(attributes.method),
    language: attributes.language,
    speechTimeout: attributes.speechTimeout,
    timeout: numberAttribute(attributes.timeout),
    actionOnEmptyResult: attributes.actionOnEmptyResult === undefined ? undefined : attributes.actionOnEmptyResult === 'true',
    hints: attributes.hints,
    finishOnKey: attributes.finishOnKey,
    numDigits: numberAttribute(attributes.numDigits),
    nested,
    ignored: ignored.length > 0 ? ignored : undefined,
  });
}

function toDial(node: OrderedNode, attributes: Record<string, string>): DialVerb {
  // The number is either the element's text or the text of a nested <Number>, <Client> or <Sip> noun.
  const nouns = elementChildren(node);
  const number = nouns.length > 0 ? textOf(nouns[0]) : textOf(node);
  return withoutUndefined({
    kind: 'dial',
    number: number || undefined,
    action: attributes.action,
    method: methodAttribute(attributes.method),
    timeout: numberAttribute(attributes.timeout),
    callerId: attributes.callerId,
  });
}

function toStart(node: OrderedNode): StartVerb {
  const verb: StartVerb = { kind: 'start' };
  const others: string[] = [];
  for (const child of elementChildren(node)) {
    const attributes = child[':@'] ?? {};
    if (nodeName(child) !== 'Recording') {
      others.push(nodeName(child));
      continue;
    }
    verb.recording = withoutUndefined({
      statusCallback: attributes.recordingStatusCallback,
      method: methodAttribute(attributes.recordingStatusCallbackMethod),
      events: (attributes.recordingStatusCallbackEvent ?? 'completed').split(/\s+/).filter(Boolean),
      channels: attributes.channels,
    });
  }
  if (others.length > 0) verb.others = others;
  return verb;
}

function toConnect(node: OrderedNode): ConnectVerb {
  const streamNode = elementChildren(node).find((child) => nodeName(child) === 'Stream');
  if (!streamNode) return { kind: 'connect' };
  const parameters: Record<string, string> = {};
  for (const child of elementChildren(streamNode)) {
    const attributes = child[':@'] ?? {};
    if (nodeName(child) === 'Parameter' && attributes.name !== undefined) parameters[attributes.name] = attributes.value ?? '';
  }
  return { kind: 'connect', stream: { url: streamNode[':@']?.url ?? '', parameters } };
}

function nodeName(node: OrderedNode): string {
  return Object.keys(node).find((key) => key !== ':@') ?? '';
}

function childrenOf(node: OrderedNode): OrderedNode[] {
  const value = node[nodeName(node)];
  return Array.isArray(value) ? (value as OrderedNode[]) : [];
}

function elementChildren(node: OrderedNode): OrderedNode[] {
  return childrenOf(node).filter((child) => nodeName(child) !== '#text');
}

/** All text inside an element, SSML tags such as `<break>` or `<prosody>` dropped. */
function textOf(node: OrderedNode): string {
  const collect = (current: OrderedNode): string =>
    childrenOf(current)
      .map((child) => (nodeName(child) === '#text' ? String(child['#text']) : ` ${collect(child)} `))
      .join('');
  return collect(node).replace(/\s+/g, ' ').trim();
}

function numberAttribute(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}

function methodAttribute(value: string | undefined): string | undefined {
  return value === undefined ? undefined : value.toUpperCase();
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;
}
