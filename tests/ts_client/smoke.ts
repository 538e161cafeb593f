// A short walk through the Runs API with the TypeScript axios client that OpenAPI Generator
// makes from openapi/runs.yaml: proof that a real generated client can use the reference server.
// tests/test_reference_ts_client.py generates ./client next to this file, compiles, and runs it.
import { Configuration, RunsApi, RunStartRequest } from "./client";

// No @types/node in tools/: declare the two bits of Node this script uses.
declare const process: { env: Record<string, string | undefined>; exitCode?: number };

function check(condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

async function main(): Promise<void> {
  const basePath = process.env.RUNS_BASE_URL;
  const token = process.env.RUNS_TOKEN;
  check(basePath && token, "RUNS_BASE_URL and RUNS_TOKEN must be set");
  const api = new RunsApi(new Configuration({ basePath, accessToken: token }));
  const clientId = `ts-smoke-${Date.now()}`;
  const request: RunStartRequest = {
    clientId,
    workflow: { name: "ts-smoke", steps: [{ id: "a", action: "noop" }] },
    inputs: { from: "typescript" },
  };

  // Start with an Idempotency-Key, then replay it: the same run.
  const key = `ts-smoke-key-${Date.now()}`;
  const first = await api.startRun(request, key);
  check(first.status === 202, `startRun answered ${first.status}`);
  const replay = await api.startRun(request, key);
  check(replay.data.runId === first.data.runId, "a replayed key must give the same runId");
  const runId = first.data.runId;

  // Read it.
  const run = await api.getRun(runId);
  check(run.data.runId === runId && run.data.clientId === clientId, "getRun returns the run");
  check(run.data.definitionHash.startsWith("sha256:"), "definitionHash is sha256:…");

  // Page through a listing of this client's runs, two at a time.
  const started = [runId];
  for (let i = 0; i < 4; i++) {
    started.push((await api.startRun(request)).data.runId);
  }
  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await api.listRuns(2, cursor, undefined, clientId);
    seen.push(...page.data.items.map((item) => item.runId));
    cursor = page.data.nextCursor ?? undefined;
    pages++;
  } while (cursor !== undefined && pages < 10);
  check(seen.length === started.length, `the walk saw ${seen.length} runs, expected ${started.length}`);
  check(seen.join() === [...started].reverse().join(), "the walk is newest first, each run once");

  // Fetch the definition and revalidate it with its ETag: 304.
  const definition = await api.getRunDefinition(runId);
  check(definition.data.name === "ts-smoke", "the definition is the submitted workflow");
  const etag = definition.headers["etag"] as string | undefined;
  check(etag && etag.startsWith('W/"sha256:'), `ETag ${etag}`);
  const revalidated = await api.getRunDefinition(runId, etag, {
    validateStatus: (status) => status === 200 || status === 304,
  });
  check(revalidated.status === 304, `If-None-Match answered ${revalidated.status}, expected 304`);

  // Cancel a run that is busy sleeping.
  const busy = await api.startRun({
    clientId,
    workflow: { name: "ts-busy", steps: [{ id: "z", action: "sleep", params: { seconds: 60 } }] },
  });
  const cancelled = await api.cancelRun(busy.data.runId);
  check(cancelled.status === 202, `cancelRun answered ${cancelled.status}`);
  check(["cancelling", "cancelled"].includes(cancelled.data.status), `cancel status ${cancelled.data.status}`);

  console.log(JSON.stringify({ ok: true, runId, pages, etag, cancelStatus: cancelled.data.status }));
}

main().catch((error: unknown) => {
  const detail = (error as { response?: { status: number; data: unknown } }).response;
  console.error(String(error), detail ? JSON.stringify({ status: detail.status, body: detail.data }) : "");
  process.exitCode = 1;
});
