// Traffic for observe mode from a client nobody here wrote: the TypeScript axios client that OpenAPI
// Generator makes from openapi/runs.yaml, sent through a recording proxy (tests/test_observe_foreign.py).
// It exercises what observe judges across exchanges: a key replayed and reused with another body, runs
// read, a definition revalidated, a run cancelled and followed to its end, a filtered walk of pages.
// It asserts nothing about the answers: a faulty server must be recorded as it answers, and the judging
// is observe's. It prints what it sent and what came back, so the test can tell the traffic was made.
import { Configuration, RunsApi, RunStartRequest } from "./client";

// No @types/node in tools/: declare the bits of Node this script uses.
declare const process: { env: Record<string, string | undefined>; exitCode?: number };
declare function setTimeout(callback: () => void, ms: number): unknown;

// Every status is an answer to record, not an error to throw.
const ANY = { validateStatus: () => true };
const TERMINAL = ["succeeded", "failed", "cancelled"];

let sent = 0;
async function send<T>(call: Promise<T>): Promise<T> {
  sent++;
  return call;
}

async function main(): Promise<void> {
  const basePath = process.env.RUNS_BASE_URL;
  const token = process.env.RUNS_TOKEN;
  if (!basePath || !token) {
    throw new Error("RUNS_BASE_URL and RUNS_TOKEN must be set");
  }
  const api = new RunsApi(new Configuration({ basePath, accessToken: token }));
  const stamp = Date.now();
  const clientId = `ts-observed-${stamp}`;
  const body = (n: number): RunStartRequest => ({
    clientId,
    workflow: { name: "ts-observed", steps: [{ id: "a", action: "noop" }] },
    inputs: { n },
  });

  // One key three times: the first start, a replay with the same body, a reuse with another body.
  const key = `ts-observed-key-${stamp}`;
  const first = await send(api.startRun(body(1), key, ANY));
  const replay = await send(api.startRun(body(1), key, ANY));
  const conflict = await send(api.startRun(body(2), key, ANY));
  // Keyless starts: each its own run.
  const started = [first.data.runId];
  for (let n = 3; n <= 5; n++) {
    started.push((await send(api.startRun(body(n), undefined, ANY))).data.runId);
  }
  for (const runId of started) {
    await send(api.getRun(runId, ANY));
  }

  // A definition, revalidated with its ETag (304 expected) and with a tag that is not its ETag (200).
  const definition = await send(api.getRunDefinition(first.data.runId, undefined, ANY));
  const etag = definition.headers["etag"] as string | undefined;
  const revalidated = await send(api.getRunDefinition(first.data.runId, etag ?? '"none"', ANY));
  const mismatched = await send(api.getRunDefinition(first.data.runId, 'W/"sha256:00"', ANY));

  // A run busy sleeping, cancelled, then read until it ends (against a deadline, never a fixed wait).
  const busy = await send(
    api.startRun(
      { clientId, workflow: { name: "ts-busy", steps: [{ id: "z", action: "sleep", params: { seconds: 60 } }] } },
      undefined,
      ANY,
    ),
  );
  const cancelled = await send(api.cancelRun(busy.data.runId, ANY));
  let busyStatus = cancelled.data.status as string | undefined;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    busyStatus = (await send(api.getRun(busy.data.runId, ANY))).data.status;
    if (busyStatus !== undefined && TERMINAL.includes(busyStatus)) {
      break;
    }
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
  }

  // Walk this client's runs two at a time.
  const walked: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await send(api.listRuns(2, cursor, undefined, clientId, ANY));
    walked.push(...(page.data.items ?? []).map((item) => item.runId));
    cursor = page.data.nextCursor ?? undefined;
    pages++;
  } while (cursor !== undefined && pages < 10);

  console.log(
    JSON.stringify({
      sent,
      firstStatus: first.status,
      replaySameRun: replay.data.runId === first.data.runId,
      conflictStatus: conflict.status,
      etag,
      revalidatedStatus: revalidated.status,
      mismatchedStatus: mismatched.status,
      cancelStatus: cancelled.status,
      busyStatus,
      pages,
      walked: walked.length,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(String(error));
  process.exitCode = 1;
});
