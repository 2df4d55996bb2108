// Goal: the Kubernetes manifests in deploy/kubernetes/ and the Dockerfile agree with the
// Kubernetes schemas and with what `shardline start` accepts, so a renamed flag, a moved port or
// a probe on the wrong port fails here instead of in someone's cluster.
// Method: every YAML document is parsed and validated with its kubernetes-models class. Each
// shardline container's args are parsed and resolved by `shardline start`'s own code
// (parseCommandArgs, resolveStartSettings) with the image's ENV and the container's env (Secret
// values substituted), as the pod would run them, once per StatefulSet ordinal. From the
// resolved settings come the ports each pod listens on; container ports, probes, Services, the
// preStop command, placement peers, the brokers' --placement addresses and --broker-peers, and the
// Dockerfile's EXPOSE are checked against them. Nothing runs in a cluster.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { commands } from '../cli/commands/index.js';
import { DEFAULT_ADMIN_PORT, DEFAULT_ADMIN_URL, DEFAULT_MQTT_PORT, envName, parseCommandArgs, resolveStartSettings, START_SETTINGS, type StartSettings } from '../cli/testing.js';
import { DEFAULT_JOURNAL_GRPC_PORT } from '../journal/index.js';
import { effectiveRoles } from '../node/index.js';
import { DEFAULT_PLACEMENT_GRPC_PORT } from '../placement/service/index.js';
import { REPO_ROOT } from './support/broker-process.js';
import { ensureCliBuilt } from './support/cli-entry.js';

const MANIFESTS = join(REPO_ROOT, 'deploy', 'kubernetes');
const IMAGE_NAME = 'shardline';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests are free-form YAML, checked field by field
type Json = any;

interface Manifest {
  file: string;
  object: Json;
}

function loadManifests(): Manifest[] {
  const found: Manifest[] = [];
  for (const file of readdirSync(MANIFESTS).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml').sort()) {
    for (const document of parseAllDocuments(readFileSync(join(MANIFESTS, file), 'utf8'))) {
      assert.deepEqual(document.errors, [], `${file}: YAML errors`);
      const object = document.toJS() as Json;
      if (object !== null) found.push({ file, object });
    }
  }
  return found;
}

/** The ENV lines of the Dockerfile's last stage (the runtime image), as the container sees them. */
function dockerfile(): { env: Record<string, string>; expose: number[]; entrypoint: string[] } {
  const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const stages = text.split(/^FROM /m);
  const runtime = stages[stages.length - 1] ?? '';
  const env: Record<string, string> = {};
  for (const line of runtime.split('\n').filter((candidate) => candidate.startsWith('ENV '))) {
    for (const pair of line.slice(4).trim().split(/\s+/)) {
      const [name, value] = pair.split('=');
      if (name !== undefined && value !== undefined) env[name] = value;
    }
  }
  const expose = runtime.split('\n').filter((line) => line.startsWith('EXPOSE ')).flatMap((line) => line.slice(7).trim().split(/\s+/).map(Number));
  const entrypointLine = runtime.split('\n').find((line) => line.startsWith('ENTRYPOINT '));
  const entrypoint = entrypointLine === undefined ? [] : (JSON.parse(entrypointLine.slice(11)) as string[]);
  return { env, expose, entrypoint };
}

const manifests = loadManifests();
const image = dockerfile();

function ofKind(kind: string): Manifest[] {
  return manifests.filter((manifest) => manifest.object.kind === kind);
}

/** Workloads with a pod template: [manifest, template]. */
function workloads(): Array<{ manifest: Manifest; template: Json }> {
  return manifests.filter((manifest) => manifest.object.spec?.template !== undefined).map((manifest) => ({ manifest, template: manifest.object.spec.template }));
}

function shardlineContainers(template: Json): Json[] {
  return (template.spec.containers as Json[]).filter((container) => String(container.image).split(':')[0] === IMAGE_NAME);
}

function secretValue(name: string, key: string): string {
  const secret = ofKind('Secret').find((manifest) => manifest.object.metadata.name === name);
  assert.ok(secret !== undefined, `Secret ${name} is in the manifests`);
  const value = secret.object.stringData?.[key] ?? (secret.object.data?.[key] === undefined ? undefined : Buffer.from(secret.object.data[key], 'base64').toString());
  assert.equal(typeof value, 'string', `Secret ${name} has key ${key}`);
  return value as string;
}

/** The container's environment: the image's ENV, then its env entries (Secret refs resolved). */
/**
 * The container's environment as the pod named `podName` gets it: the image's ENV, then each
 * entry in order, with Secret values and the pod's name (the downward API) filled in and
 * $(NAME) references to earlier entries expanded, as the kubelet does.
 */
function containerEnv(container: Json, podName: string): Record<string, string> {
  const env: Record<string, string> = { ...image.env };
  const declared: Record<string, string> = {};
  for (const entry of (container.env ?? []) as Json[]) {
    let value: string;
    if (entry.value !== undefined) value = String(entry.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => declared[name] ?? whole);
    else if (entry.valueFrom?.secretKeyRef !== undefined) value = secretValue(entry.valueFrom.secretKeyRef.name, entry.valueFrom.secretKeyRef.key);
    else if (entry.valueFrom?.fieldRef?.fieldPath === 'metadata.name') value = podName;
    else assert.fail(`${container.name}: env ${entry.name} has a source this test does not know`);
    declared[entry.name] = value;
    env[entry.name] = value;
  }
  return env;
}

async function commandFor(words: readonly string[]): Promise<{ command: Awaited<ReturnType<(typeof commands)[number]['load']>>; rest: string[] }> {
  const entry = commands.filter((candidate) => candidate.path.every((word, index) => words[index] === word)).sort((a, b) => b.path.length - a.path.length)[0];
  assert.ok(entry !== undefined, `"shardline ${words.join(' ')}" is a shardline command`);
  return { command: await entry.load(), rest: words.slice(entry.path.length) };
}

/** The settings `shardline start ARGS` resolves to in this container on host `hostname`. */
async function startSettings(container: Json, hostname: string): Promise<StartSettings> {
  const args = [...((container.command ?? image.entrypoint) as string[]).slice(1), ...((container.args ?? []) as string[])];
  assert.equal(args[0], 'start', `${container.name}: runs shardline start`);
  const { command, rest } = await commandFor(args);
  const { values, positionals } = parseCommandArgs(command, rest);
  assert.deepEqual(positionals, []);
  const settings = await resolveStartSettings(values, containerEnv(container, hostname), hostname);
  assert.deepEqual(settings.warnings, [], `${container.name}: no warnings (an unused or misspelt setting)`);
  return settings;
}

/** Every port the node listens on, by what it serves. */
function listeningPorts(settings: StartSettings): Map<string, number> {
  const roles = effectiveRoles(settings);
  const ports = new Map<string, number>([['admin', settings.adminPort]]);
  if (roles.includes('broker')) {
    ports.set('mqtt', settings.mqttPort);
    if (settings.mqttsPort !== undefined) ports.set('mqtts', settings.mqttsPort);
  }
  if (roles.includes('journal')) ports.set('journal-grpc', settings.grpcPort);
  if (roles.includes('placement')) {
    const own = settings.placementPeers?.find((peer) => peer.id === settings.nodeId);
    ports.set('placement', settings.placementPort ?? (own === undefined ? DEFAULT_PLACEMENT_GRPC_PORT : Number(own.address.slice(own.address.lastIndexOf(':') + 1))));
  }
  return ports;
}

/** A probe's or Service's port (a number, or a container port's name) as a number in this container. */
function containerPort(container: Json, port: number | string): number {
  if (typeof port === 'number') return port;
  const named = (container.ports as Json[]).find((candidate) => candidate.name === port);
  assert.ok(named !== undefined, `${container.name}: a container port named ${port}`);
  return named.containerPort as number;
}

/** The host names a workload's pods run under: one per StatefulSet ordinal, or one Deployment pod. */
function hostnames(manifest: Manifest): string[] {
  const { kind, metadata, spec } = manifest.object;
  if (kind === 'StatefulSet') return Array.from({ length: spec.replicas ?? 1 }, (_, ordinal) => `${metadata.name}-${ordinal}`);
  return [`${metadata.name}-5d8f7c9b6-x2x7q`];
}

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** The StatefulSet of the given component: `placement-journal` (the voters), `journal` (the spare journal nodes). */
function statefulSet(component: string): Json {
  const found = ofKind('StatefulSet').filter((manifest) => manifest.object.spec.template.metadata.labels['app.kubernetes.io/component'] === component);
  assert.equal(found.length, 1, `one StatefulSet of component ${component}`);
  return (found[0] as Manifest).object;
}

describe('deploy/kubernetes manifests', () => {
  test('every object validates against its Kubernetes schema', async () => {
    assert.ok(manifests.length >= 7, `found ${manifests.length} objects`);
    for (const { file, object } of manifests) {
      const [group, version] = String(object.apiVersion).includes('/') ? String(object.apiVersion).split('/') : [undefined, object.apiVersion];
      const path = group === undefined ? `kubernetes-models/${version}/${object.kind}` : `kubernetes-models/${group}/${version}/${object.kind}`;
      const module = (await import(path)) as Record<string, new (data: unknown) => { validate(): void }>;
      const Model = module[object.kind as string];
      assert.ok(Model !== undefined, `${file}: a model for ${object.apiVersion} ${object.kind}`);
      assert.doesNotThrow(() => new Model(object).validate(), `${file}: ${object.kind} ${object.metadata?.name}`);
    }
  });

  test('kustomization.yaml lists every manifest file', () => {
    const kustomization = parseAllDocuments(readFileSync(join(MANIFESTS, 'kustomization.yaml'), 'utf8'))[0]?.toJS() as Json;
    assert.deepEqual([...kustomization.resources].sort(), [...new Set(manifests.map((manifest) => manifest.file))].sort());
  });

  test('each shardline container runs flags `shardline start` accepts, and declares exactly the ports it listens on', async () => {
    let checked = 0;
    for (const { manifest, template } of workloads()) {
      const containers = shardlineContainers(template);
      assert.ok(containers.length > 0, `${manifest.file}: a shardline container`);
      for (const container of containers) {
        for (const hostname of hostnames(manifest)) {
          const listening = listeningPorts(await startSettings(container, hostname));
          const declared = new Map((container.ports as Json[]).map((port) => [port.name as string, port.containerPort as number]));
          assert.deepEqual(declared, listening, `${manifest.file} ${hostname}: container ports (by name) = the ports it listens on`);
          checked += 1;
        }
        for (const entry of (container.env ?? []) as Json[]) {
          if (String(entry.name).startsWith('SHARDLINE_')) assert.ok(START_SETTINGS.some((spec) => envName(spec.key) === entry.name), `${manifest.file}: ${entry.name} is a setting's variable`);
        }
      }
    }
    assert.ok(checked >= 4, 'every StatefulSet pod and the broker were resolved');
  });

  test('probes: readiness /readyz, liveness and startup /healthz, all on the admin port', async () => {
    for (const { manifest, template } of workloads()) {
      for (const container of shardlineContainers(template)) {
        const settings = await startSettings(container, hostnames(manifest)[0] as string);
        assert.equal(container.readinessProbe?.httpGet?.path, '/readyz', `${manifest.file}: readiness probe`);
        assert.equal(container.livenessProbe?.httpGet?.path, '/healthz', `${manifest.file}: liveness probe`);
        if (container.startupProbe !== undefined) assert.equal(container.startupProbe.httpGet?.path, '/healthz');
        for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe].filter((candidate) => candidate !== undefined)) {
          assert.equal(containerPort(container, probe.httpGet.port), settings.adminPort, `${manifest.file}: probe ${probe.httpGet.path} on the admin port`);
        }
      }
    }
  });

  test('every Service selects pods and targets ports they listen on', async () => {
    const services = ofKind('Service');
    assert.ok(services.length >= 3);
    for (const { file, object: service } of services) {
      const selected = workloads().filter(({ template }) => selects(service.spec.selector, template.metadata.labels));
      assert.ok(selected.length > 0, `${file}: Service ${service.metadata.name} selects a workload`);
      for (const { manifest, template } of selected) {
        for (const container of shardlineContainers(template)) {
          const listening = [...listeningPorts(await startSettings(container, hostnames(manifest)[0] as string)).values()];
          for (const port of service.spec.ports as Json[]) {
            assert.ok(listening.includes(containerPort(container, port.targetPort ?? port.port)), `${file}: Service ${service.metadata.name} port ${port.name} reaches a port ${manifest.object.metadata.name} listens on (${listening.join(', ')})`);
          }
        }
      }
    }
  });

  test('every NetworkPolicy selects pods and opens ports they listen on', async () => {
    for (const { file, object: policy } of ofKind('NetworkPolicy')) {
      const selected = workloads().filter(({ template }) => selects(policy.spec.podSelector.matchLabels, template.metadata.labels));
      assert.ok(selected.length > 0, `${file}: NetworkPolicy ${policy.metadata.name} selects a workload`);
      for (const { manifest, template } of selected) {
        for (const container of shardlineContainers(template)) {
          const listening = [...listeningPorts(await startSettings(container, hostnames(manifest)[0] as string)).values()];
          for (const rule of policy.spec.ingress as Json[]) {
            for (const port of rule.ports as Json[]) assert.ok(listening.includes(containerPort(container, port.port)), `${file}: port ${port.port} is one ${manifest.object.metadata.name} listens on`);
          }
        }
      }
    }
  });

  test('the placement StatefulSet: node ids from the ordinals, peers at its headless Service, Parallel start, PDB, anti-affinity, preStop step-down', async () => {
    const sts = statefulSet('placement-journal');
    const labels = sts.spec.template.metadata.labels as Record<string, string>;
    const headless = ofKind('Service').find((manifest) => manifest.object.metadata.name === sts.spec.serviceName)?.object;
    assert.ok(headless !== undefined, 'the serviceName is a Service of the manifests');
    assert.equal(headless.spec.clusterIP, 'None');
    assert.equal(headless.spec.publishNotReadyAddresses, true, 'voters find each other before they are ready');
    assert.equal(sts.spec.podManagementPolicy, 'Parallel', 'OrderedReady would wait for a quorum that needs the next pod');
    assert.ok(sts.spec.volumeClaimTemplates.some((claim: Json) => sts.spec.template.spec.containers[0].volumeMounts.some((mount: Json) => mount.name === claim.metadata.name)), 'the data volume is mounted');

    const container = shardlineContainers(sts.spec.template)[0];
    const replicas = sts.spec.replicas as number;
    assert.ok(replicas >= 3 && replicas % 2 === 1, 'an odd number of voters, at least 3');
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      const settings = await startSettings(container, `${sts.metadata.name}-${ordinal}`);
      assert.ok(effectiveRoles(settings).includes('placement'));
      assert.equal(settings.nodeId, ordinal + 1, `pod ${ordinal} is node ${ordinal + 1}`);
      assert.equal(settings.dataDir, container.volumeMounts.find((mount: Json) => mount.name === sts.spec.volumeClaimTemplates[0].metadata.name).mountPath, 'data on the claimed volume');
      const peers = settings.placementPeers ?? [];
      assert.deepEqual(peers.map((peer) => peer.id), Array.from({ length: replicas }, (_, index) => index + 1));
      for (const peer of peers) assert.equal(peer.address, `${sts.metadata.name}-${peer.id - 1}.${sts.spec.serviceName}:${listeningPorts(settings).get('placement')}`, `peer ${peer.id} is pod ${peer.id - 1}'s stable name`);
    }

    const budgets = ofKind('PodDisruptionBudget').filter((manifest) => selects(manifest.object.spec.selector.matchLabels, labels));
    assert.equal(budgets.length, 1, 'one PDB covers the voters');
    assert.equal(budgets[0]?.object.spec.maxUnavailable, 1);
    const antiAffinity = sts.spec.template.spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution as Json[] | undefined;
    assert.ok(antiAffinity?.some((term) => term.topologyKey === 'kubernetes.io/hostname' && selects(term.labelSelector.matchLabels, labels)), 'no two voters on one machine');

    const preStop = container.lifecycle?.preStop?.exec?.command as string[] | undefined;
    assert.ok(preStop !== undefined && preStop[0] === 'shardline', 'a preStop hook runs shardline');
    const { command, rest } = await commandFor(preStop.slice(1));
    assert.deepEqual(command.path, ['ctl', 'cluster', 'step-down']);
    const { values } = parseCommandArgs(command, rest);
    const server = new URL(typeof values.server === 'string' ? values.server : DEFAULT_ADMIN_URL);
    const settings = await startSettings(container, `${sts.metadata.name}-0`);
    assert.equal(Number(server.port), settings.adminPort, 'the hook asks this pod\'s admin port');
    assert.ok(containerEnv(container, `${sts.metadata.name}-0`).SHARDLINE_ADMIN_TOKEN !== undefined, 'the hook has the admin token');
    assert.ok(sts.spec.template.spec.terminationGracePeriodSeconds >= 30, 'time for the hand-over and a clean stop');
  });

  test('brokers: the replicated journal through placement, its cluster token, the voters as --placement, one MQTT service', async () => {
    const sts = statefulSet('placement-journal');
    const voter = await startSettings(shardlineContainers(sts.spec.template)[0], `${sts.metadata.name}-0`);
    assert.ok(effectiveRoles(voter).includes('journal') && effectiveRoles(voter).includes('placement'), 'the voters are the journal nodes, so the placement leader assigns them replicas');
    assert.equal(voter.replicaPeers, undefined, 'the journal nodes take their peers from placement');
    // Placement hands out the journal address each node registers; bound to 0.0.0.0, a node must advertise a name the others resolve.
    for (let ordinal = 0; ordinal < (sts.spec.replicas as number); ordinal++) {
      const pod = `${sts.metadata.name}-${ordinal}`;
      const settings = await startSettings(shardlineContainers(sts.spec.template)[0], pod);
      assert.equal(settings.advertiseHost, `${pod}.${sts.spec.serviceName}`, `${pod} advertises its stable DNS name in the headless Service`);
    }
    const brokers = ofKind('Deployment');
    assert.ok(brokers.length >= 1);
    for (const { file, object: deployment } of brokers) {
      const settings = await startSettings(shardlineContainers(deployment.spec.template)[0], hostnames({ file, object: deployment })[0] as string);
      assert.deepEqual(effectiveRoles(settings), ['broker']);
      // Without --journal a broker follows each shard's leader (PlacedShardStore).
      assert.equal(settings.journal, undefined, `${file}: no --journal: the broker follows the shard leaders placement names`);
      assert.deepEqual(settings.placement, (voter.placementPeers ?? []).map((peer) => peer.address), `${file}: --placement lists every voter`);
      // The journal port refuses calls without the journal node's cluster token, and TLS must match.
      assert.ok(voter.clusterToken !== undefined, 'the journal nodes have a cluster token, so their gRPC port requires it');
      assert.equal(settings.clusterToken, voter.clusterToken, `${file}: the broker sends the journal's cluster token`);
      assert.equal(settings.journalTls, voter.journalTls, `${file}: journal-tls alike on the broker and the journal`);
      // Two brokers over the same shards must coordinate sessions and deliver across (docs/deployment.md).
      const many = (deployment.spec.replicas ?? 1) > 1 || deployment.spec.strategy?.type !== 'Recreate';
      if (many) assert.equal(settings.brokerPeers, true, `${file}: more than one broker pod at a time needs --broker-peers`);
    }
  });

  test('spare journal nodes: journal only, ids past the voters\' from the ordinal, registered with every voter under their stable names, reachable on the journal port', async () => {
    const voters = statefulSet('placement-journal');
    const voterSettings = await startSettings(shardlineContainers(voters.spec.template)[0], `${voters.metadata.name}-0`);
    const voterIds = (voterSettings.placementPeers ?? []).map((peer) => peer.id);
    const sts = statefulSet('journal');
    const headless = ofKind('Service').find((manifest) => manifest.object.metadata.name === sts.spec.serviceName)?.object;
    assert.ok(headless !== undefined && headless.spec.clusterIP === 'None', 'a headless Service gives each spare a stable name');
    assert.ok(sts.spec.volumeClaimTemplates.some((claim: Json) => sts.spec.template.spec.containers[0].volumeMounts.some((mount: Json) => mount.name === claim.metadata.name)), 'each spare has its own volume');
    const container = shardlineContainers(sts.spec.template)[0];
    // Checked for more pods than the manifest runs: `kubectl scale` must not make ids collide.
    const ids = new Set<number>();
    for (let ordinal = 0; ordinal < Math.max(5, sts.spec.replicas as number); ordinal++) {
      const pod = `${sts.metadata.name}-${ordinal}`;
      const settings = await startSettings(container, pod);
      assert.deepEqual(effectiveRoles(settings), ['journal'], 'a journal node only: no voter, no broker');
      assert.ok(settings.nodeId !== undefined && !voterIds.includes(settings.nodeId), `${pod}: node ${settings.nodeId} is not a voter's id`);
      assert.ok(!ids.has(settings.nodeId), `${pod}: node ${settings.nodeId} is unique`);
      ids.add(settings.nodeId);
      // A journal node replicates placement's shards only with a node id, the cluster token and --placement.
      assert.deepEqual(settings.placement, (voterSettings.placementPeers ?? []).map((peer) => peer.address), `${pod}: --placement lists every voter`);
      assert.equal(settings.clusterToken, voterSettings.clusterToken, `${pod}: the cluster's token`);
      assert.equal(settings.journalTls, voterSettings.journalTls, `${pod}: journal-tls alike`);
      assert.equal(settings.replicaPeers, undefined, `${pod}: peers from placement`);
      assert.equal(settings.advertiseHost, `${pod}.${sts.spec.serviceName}`, `${pod} advertises its stable DNS name`);
    }
    // The voters' own ids stay from the ordinal plus one, apart from these.
    assert.ok(Math.min(...ids) > Math.max(...voterIds));
    const policies = ofKind('NetworkPolicy').filter((manifest) => selects(manifest.object.spec.podSelector.matchLabels, sts.spec.template.metadata.labels));
    assert.equal(policies.length, 1, 'a NetworkPolicy guards the spares');
    const journalRule = (policies[0] as Manifest).object.spec.ingress.find((rule: Json) => rule.ports.some((port: Json) => port.port === 'journal-grpc'));
    const brokers = ofKind('Deployment').map((manifest) => manifest.object.spec.template.metadata.labels as Record<string, string>);
    for (const labels of [voters.spec.template.metadata.labels, ...brokers]) {
      assert.ok(journalRule.from.some((peer: Json) => selects(peer.podSelector.matchLabels ?? {}, labels)), `pods labelled ${JSON.stringify(labels)} reach the spares' journal port`);
    }
  });

  test('the Dockerfile build stage copies every source folder the build compiles', () => {
    ensureCliBuilt();
    const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const build = text.split(/^FROM /m).find((stage) => stage.includes('npm run build')) ?? '';
    const copied = new Set(build.split('\n').filter((line) => line.startsWith('COPY ') && !line.includes('--from')).flatMap((line) => line.slice(5).trim().split(/\s+/).slice(0, -1)));
    // dist/ mirrors the source tree: each of its top folders is a source folder tsc compiled.
    for (const folder of readdirSync(join(REPO_ROOT, 'dist'), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name)) assert.ok(copied.has(folder), `the build stage copies ${folder}/ (it is in dist/)`);
    for (const file of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts']) assert.ok(copied.has(file), `the build stage copies ${file}`);
    assert.match(text, /^COPY console console$/m, 'the runtime has the dashboard files');
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim());
    for (const path of copied) assert.ok(!ignored.includes(path), `.dockerignore does not leave out ${path}`);
  });

  test('the Dockerfile exposes the default ports and runs shardline as a non-root user', () => {
    assert.deepEqual([...image.expose].sort(), [DEFAULT_MQTT_PORT, DEFAULT_JOURNAL_GRPC_PORT, DEFAULT_PLACEMENT_GRPC_PORT, DEFAULT_ADMIN_PORT].sort());
    assert.deepEqual(image.entrypoint, ['shardline']);
    const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    assert.match(text, /^USER node$/m);
    assert.match(text, /^FROM node:20-slim\b/m);
    for (const name of Object.keys(image.env).filter((candidate) => candidate.startsWith('SHARDLINE_'))) {
      assert.ok(START_SETTINGS.some((spec) => envName(spec.key) === name), `Dockerfile ENV ${name} is a setting's variable`);
    }
    assert.ok(image.env.SHARDLINE_DATA_DIR !== undefined && new RegExp(`^VOLUME ${image.env.SHARDLINE_DATA_DIR}$`, 'm').test(text), 'the data directory is the volume');
  });
});
