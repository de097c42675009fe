import { readFile } from 'node:fs/promises';
import { createInterface, type Interface } from 'node:readline/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { readDevAuthToken } from '../twilio/dev-auth-token.js';
import { simulateCall, type CallerReply, type GatherPrompt, type SimulatedCall, type SimulatorEvent } from './twilio-simulator.js';

/** Shown by `npm run call -- --help`. */
export const callUsage = `Call your callme server the way Twilio does, from the terminal.

Usage: npm run call -- [options]

  --url URL            where the server listens (default http://127.0.0.1:<PORT>)
  --public-url URL     base URL the server checks signatures against
                       (default PUBLIC_URL, else http://localhost:<port of --url>)
  --path PATH          incoming-call webhook (default /twilio/incoming; /voice for the other routes)
  --status-path PATH   status callback (default /twilio/status; "none" to send none)
  --token TOKEN        auth token to sign with (default TWILIO_AUTH_TOKEN, else the
                       local token the server keeps in DATA_DIR)
  --from NUMBER        caller's number (default +15005550006)
  --to NUMBER          number called (default TWILIO_PHONE_NUMBER, else +15005550001)
  --script FILE        caller lines, one per turn ("" = silence, /hangup, /press 12#, # comment)
  --say TEXT           a caller line; repeat for several turns
  --confidence N       speech recognition confidence sent to the server (default 0.92)
  --duplicate          send every webhook twice at once, as Twilio's retries can
  --verbose            show every webhook with its timing
  --quiet              print only problems and the summary line
  -h, --help           show this help

Without --script or --say, and with a terminal, you talk to the assistant:
an empty line is silence, Ctrl-D or /hangup hangs up. Lines piped on stdin
are used as a script. When scripted lines run out, the caller hangs up.

Exit status: 0 when the call ends normally, 1 after an application error or
when no server answers, 2 for bad options or configuration.`;

const applicationErrorHeard = "We're sorry, an application error has occurred. Goodbye.";

/** Runs `npm run call` with these arguments and returns the process exit status. */
export async function runCallCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        'public-url': { type: 'string' },
        path: { type: 'string' },
        'status-path': { type: 'string' },
        token: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        script: { type: 'string' },
        say: { type: 'string', multiple: true },
        confidence: { type: 'string' },
        duplicate: { type: 'boolean' },
        verbose: { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${callUsage}`);
    return 2;
  }
  if (values.help) {
    console.log(callUsage);
    return 0;
  }

  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }

  const baseUrl = (values.url ?? `http://127.0.0.1:${config.port}`).replace(/\/+$/, '');
  const publicUrl = (values['public-url'] ?? defaultPublicUrl(config, values.url)).replace(/\/+$/, '');
  const confidence = values.confidence === undefined ? 0.92 : Number(values.confidence);
  if (!Number.isFinite(confidence) || confidence < 0 || confidence > 1) {
    console.error(`--confidence: expected a number between 0 and 1 (got ${JSON.stringify(values.confidence)})`);
    return 2;
  }
  const authToken = values.token ?? config.twilio.authToken ?? (await readDevAuthToken(config.dataDir));
  if (!authToken) {
    console.error(
      `No auth token to sign requests with. Pass --token, set TWILIO_AUTH_TOKEN, or start the server once so it writes ${config.dataDir}/dev-twilio-auth-token.`,
    );
    return 2;
  }

  const interactive = process.stdin.isTTY === true && values.script === undefined && values.say === undefined;
  let lines: string[] | undefined;
  if (!interactive) {
    try {
      lines = await scriptLines(values.script, values.say);
    } catch (error) {
      console.error(`Cannot read the script: ${(error as Error).message}`);
      return 2;
    }
  }
  const readline = interactive ? createInterface({ input: process.stdin, output: process.stdout }) : undefined;
  const controller = new AbortController();
  const onInterrupt = () => controller.abort();
  readline?.on('SIGINT', onInterrupt);
  process.once('SIGINT', onInterrupt);

  const verbosity = values.quiet ? 'quiet' : values.verbose ? 'verbose' : 'normal';
  // Before any webhook answered, a refused connection means no server: say so once, at the end.
  let answered = false;
  let unreachable = false;
  const show = (event: SimulatorEvent) => {
    if (event.type === 'webhook-answered') answered = true;
    if (event.type === 'application-error' && event.code === 11205 && !answered) unreachable = true;
    if (!unreachable) printEvent(event, { verbosity, interactive, publicUrl });
  };
  if (verbosity !== 'quiet') console.log(`📞 Calling ${publicUrl}${values.path ?? '/twilio/incoming'} (sent to ${baseUrl}) from ${values.from ?? '+15005550006'}…`);

  let result: SimulatedCall;
  try {
    result = await simulateCall({
      baseUrl,
      publicUrl,
      authToken,
      entryPath: values.path,
      statusPath: values['status-path'] === 'none' ? null : values['status-path'],
      from: values.from,
      to: values.to ?? config.twilio.phoneNumber,
      defaultConfidence: confidence,
      duplicateWebhooks: values.duplicate,
      signal: controller.signal,
      onEvent: show,
      caller: readline ? terminalCaller(readline, confidence) : scriptedCaller(lines ?? [], confidence),
    });
  } finally {
    readline?.close();
    process.off('SIGINT', onInterrupt);
  }

  if (isUnreachable(result)) {
    console.error(`No callme server answers at ${baseUrl} — start it with \`npm start\``);
    return 1;
  }
  console.log(summaryLine(result));
  if (result.endedBy === 'aborted') return 130;
  return result.applicationErrors.length > 0 ? 1 : 0;
}

function defaultPublicUrl(config: Config, url: string | undefined): string {
  // A server without PUBLIC_URL signs for http://localhost:<its port>; follow --url's port.
  if (!config.publicUrlIsDefault || url === undefined) return config.publicUrl;
  const parsed = new URL(url);
  return `http://localhost:${parsed.port || (parsed.protocol === 'https:' ? 443 : 80)}`;
}

async function scriptLines(script: string | undefined, said: string[] | undefined): Promise<string[]> {
  let text: string;
  if (said !== undefined) return said;
  if (script !== undefined) text = await readFile(script, 'utf8');
  else text = await readStdin();
  const lines = text.split(/\r?\n/);
  // A file's final newline is not a turn of silence.
  if (lines.at(-1) === '') lines.pop();
  return lines.filter((line) => !line.trimStart().startsWith('#'));
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function scriptedCaller(lines: string[], confidence: number) {
  let next = 0;
  return async (prompt: GatherPrompt): Promise<CallerReply> => {
    if (next >= lines.length) return null;
    return toReply(lines[next++], prompt, confidence);
  };
}

function terminalCaller(readline: Interface, confidence: number) {
  let closed = false;
  readline.once('close', () => {
    closed = true;
  });
  return async (prompt: GatherPrompt): Promise<CallerReply> => {
    if (closed) return null;
    const line = await new Promise<string | null>((resolve) => {
      const onClose = () => {
        // Ctrl-D leaves the cursor after the prompt.
        process.stdout.write('\n');
        resolve(null);
      };
      readline.once('close', onClose);
      readline.question('👤 You: ', { signal: prompt.signal }).then(
        (answer) => {
          readline.off('close', onClose);
          resolve(answer);
        },
        () => resolve(null),
      );
    });
    return line === null ? null : toReply(line, prompt, confidence);
  };
}

function toReply(line: string, prompt: GatherPrompt, confidence: number): CallerReply {
  const text = line.trim();
  if (text === '/hangup') return null;
  if (text.startsWith('/press')) return { digits: text.slice('/press'.length).replace(/\s+/g, '') };
  // A keypad-only menu: typed digits are key presses.
  if (!prompt.gather.input.includes('speech') && /^[0-9*#]+$/.test(text)) return { digits: text };
  return text === '' ? '' : { speech: text, confidence };
}

interface PrintOptions {
  verbosity: 'quiet' | 'normal' | 'verbose';
  interactive: boolean;
  publicUrl: string;
}

function printEvent(event: SimulatorEvent, { verbosity, interactive, publicUrl }: PrintOptions): void {
  const shortUrl = (url: string) => (url.startsWith(publicUrl) ? url.slice(publicUrl.length) || '/' : url);
  const problem = (text: string) => console.log(text);
  const normal = (text: string) => {
    if (verbosity !== 'quiet') console.log(text);
  };
  switch (event.type) {
    case 'say-spoken':
      return normal(`🤖 Assistant: ${event.text}`);
    case 'audio-played':
      return normal(`🔊 ${describeAudio(event)} from ${shortUrl(event.url)}`);
    case 'audio-failed':
      return problem(`⚠️  audio from ${shortUrl(event.url)} could not be played (${event.code}): ${event.reason}`);
    case 'digits-played':
      return normal(`🔢 Assistant plays tones ${event.digits}`);
    case 'caller-spoke':
      if (!interactive) normal(`👤 You: ${event.speech}`);
      return;
    case 'caller-pressed':
      return normal(`👤 You press ${event.digits || '(nothing)'}`);
    case 'gather-timed-out':
      return normal('   (silence)');
    case 'caller-hung-up':
      return normal('📴 You hang up.');
    case 'dial-attempted':
      return normal(`📞 Assistant dials ${event.number ?? '(nobody)'} — simulated as no answer`);
    case 'verb-skipped':
      return normal(`⏭  <${event.name}> skipped: ${event.reason}`);
    case 'warning-logged':
      return problem(`⚠️  Twilio warning${event.code ? ` ${event.code}` : ''}: ${event.message}`);
    case 'application-error':
      problem(`💥 Application error ${event.code}: ${event.message}`);
      return problem(`   The caller hears: "${applicationErrorHeard}"`);
    case 'webhook-answered':
      if (verbosity === 'verbose') console.log(`   ← ${event.status} ${event.contentType} in ${event.ms} ms`);
      return;
    case 'webhook-sent':
      if (verbosity === 'verbose') {
        const input = event.params.SpeechResult ?? event.params.Digits;
        console.log(`   → ${event.method} ${shortUrl(event.url)}${input === undefined ? '' : ` (${JSON.stringify(input)})`}`);
      }
      return;
    case 'status-sent':
      if (verbosity === 'verbose' && event.status !== undefined) console.log(`   ← ${event.status} (status callback: ${event.callStatus})`);
      return;
    case 'webhook-duplicated':
      if (!event.identical) problem(`⚠️  ${shortUrl(event.url)} answered a duplicate request differently (HTTP ${event.statuses.join(' / ')})`);
      return;
    case 'pause-elapsed':
      if (verbosity === 'verbose') console.log(`   (pause ${event.seconds} s)`);
      return;
    default:
      return;
  }
}

function describeAudio(event: Extract<SimulatorEvent, { type: 'audio-played' }>): string {
  if (!event.fetched) return 'plays audio';
  const seconds = event.durationMs === undefined ? '' : `${(event.durationMs / 1000).toFixed(1)} s `;
  const size = event.bytes < 1024 ? `${event.bytes} B` : `${Math.round(event.bytes / 1024)} KB`;
  return `played ${seconds}${event.contentType} (${size})`;
}

function isUnreachable(result: SimulatedCall): boolean {
  const firstAnswer = result.events.find((event) => event.type === 'webhook-answered' || event.type === 'application-error');
  return firstAnswer?.type === 'application-error' && firstAnswer.code === 11205;
}

function summaryLine(result: SimulatedCall): string {
  const turns = result.events.filter((event) => event.type === 'gather-started').length;
  const timings = result.webhookTimings.map((timing) => timing.ms);
  const average = timings.length > 0 ? Math.round(timings.reduce((sum, ms) => sum + ms, 0) / timings.length) : 0;
  const slowest = timings.length > 0 ? Math.max(...timings) : 0;
  return `Call ${result.callSid}: ${result.durationSeconds} s, ${turns} turn${turns === 1 ? '' : 's'}, ended by ${result.endedBy}; ${timings.length} webhook${timings.length === 1 ? '' : 's'} (avg ${average} ms, slowest ${slowest} ms)${
    result.applicationErrors.length > 0 ? `, ${result.applicationErrors.length} application error(s)` : ''
  }${result.warnings.length > 0 ? `, ${result.warnings.length} warning(s)` : ''}.`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runCallCommand(process.argv.slice(2)).then(
    (status) => {
      process.exitCode = status;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
