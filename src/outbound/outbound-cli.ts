import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config.js';

/** Shown by `npm run call:outbound -- --help`. */
export const outboundUsage = `Have your callme server call someone: a reminder, a confirmation.

Usage: npm run call:outbound -- --to NUMBER --purpose PURPOSE [options]

  --to NUMBER          number to call, E.164 (+15551234567)
  --purpose NAME       one of the profile's outbound purposes (reminder, confirmation, …)
  --details TEXT       what the call is about, said in the greeting and the voicemail
                       ("your table for 4 on Friday at 7 pm")
  --profile ID         assistant profile (default: the server's default profile)
  --from NUMBER        number to call from (default TWILIO_PHONE_NUMBER on the server)
  --url URL            the server (default http://127.0.0.1:<PORT>)
  --token TOKEN        admin token (default ADMIN_TOKEN)
  -h, --help           show this help

The server places the call through Twilio (answering-machine detection on):
a person hears the purpose's greeting and talks to the assistant; an answering
machine gets the purpose's voicemail message after the beep.

Exit status: 0 when the call was placed, 1 when the server refused or could
not place it, 2 for bad options.`;

/** Runs `npm run call:outbound` and returns the exit status. `print` and `config` are replaceable for tests. */
export async function runOutboundCommand(
  argv: string[],
  options: { print?: (line: string) => void; config?: Config } = {},
): Promise<number> {
  const print = options.print ?? ((line: string) => console.log(line));
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        to: { type: 'string' },
        purpose: { type: 'string' },
        details: { type: 'string' },
        profile: { type: 'string' },
        from: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    print(`${(error as Error).message}\n\n${outboundUsage}`);
    return 2;
  }
  if (values.help) {
    print(outboundUsage);
    return 0;
  }
  if (!values.to || !values.purpose) {
    print(`--to and --purpose are required.\n\n${outboundUsage}`);
    return 2;
  }
  let config: Config;
  try {
    config = options.config ?? loadConfig();
  } catch (error) {
    print(error instanceof ConfigError ? error.message : String(error));
    return 2;
  }
  const server = (values.url ?? `http://127.0.0.1:${config.port}`).replace(/\/+$/, '');
  const token = values.token ?? config.admin.token;
  let response: Response;
  try {
    response = await fetch(`${server}/api/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ to: values.to, purpose: values.purpose, details: values.details, profile: values.profile, from: values.from }),
    });
  } catch (error) {
    print(`No server answered at ${server}: ${(error as Error).message}`);
    return 1;
  }
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown> & { error?: { message?: string } };
  if (response.status !== 201) {
    print(`The call was not placed (HTTP ${response.status}): ${body.error?.message ?? 'no details'}`);
    return 1;
  }
  print(`Calling ${String(body.to)} from ${String(body.from)} (${String(body.purpose)}, profile ${String(body.profile)}): ${String(body.callSid)}`);
  print(`  a person hears: ${String(body.greeting)}`);
  print(`  a voicemail gets: ${String(body.voicemail)}`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await runOutboundCommand(process.argv.slice(2));
}
