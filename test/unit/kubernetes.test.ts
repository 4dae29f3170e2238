/**
 * deploy/kubernetes: the manifests parse, and what they say agrees with the code and the other
 * files they depend on (probe paths and port, shutdown timeout, setting names, the alerts' job,
 * the stack's partition count, the memory benchmark). No cluster runs here: files are checked.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { SETTINGS } from '../../src/config.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML manifests are checked field by field
type Doc = any;

const DIR = 'deploy/kubernetes';
const FILES = ['deployment.yaml', 'configmap.yaml', 'secret.example.yaml', 'pdb.yaml', 'servicemonitor.yaml', 'keda-scaledobject.yaml', 'kustomization.yaml'];

function docs(file: string): Doc[] {
  const parsed = parseAllDocuments(read(`${DIR}/${file}`));
  if (!Array.isArray(parsed)) return [];
  for (const d of parsed) expect(d.errors, `${file}: YAML errors`).toEqual([]);
  return parsed.map((d) => d.toJS());
}
function one(file: string, kind: string, name?: string): Doc {
  const found = docs(file).filter((d) => d?.kind === kind && (name === undefined || d.metadata?.name === name));
  expect(found, `${file}: one ${kind}${name ? ` ${name}` : ''}`).toHaveLength(1);
  return found[0];
}

/** The worst peak RSS `node bench/memory.ts` measured with defaults (bench/README.md's memory table: 200 snapshots of 50,000 links). */
const MEASURED_PEAK_RSS_MIB = 301;
/** Not settings of the sink, but read by the AWS SDK or Node inside the container. */
const AWS_AND_NODE_VARIABLES = new Set([
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_REGION',
  'AWS_PROFILE',
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'NODE_ENV',
  'NODE_OPTIONS',
  'NODE_EXTRA_CA_CERTS',
]);

const deployment = () => one('deployment.yaml', 'Deployment');
const container = () => deployment().spec.template.spec.containers[0];
const configMap = () => one('configmap.yaml', 'ConfigMap');
const secret = () => one('secret.example.yaml', 'Secret', 'tow-and-go-sink');

function mebibytes(quantity: string): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!m) throw new Error(`unexpected memory quantity ${quantity}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

describe('deploy/kubernetes', () => {
  it('every manifest parses, has a kind, and kustomization lists all but the Secret example', () => {
    for (const f of FILES) {
      const ds = docs(f);
      expect(ds.length, f).toBeGreaterThan(0);
      for (const d of ds) expect(typeof d?.kind, f).toBe('string');
    }
    const k = one('kustomization.yaml', 'Kustomization');
    expect([...k.resources].sort()).toEqual(FILES.filter((f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml').sort());
  });

  it('one Deployment whose selector matches its pods, running `consume`', () => {
    const d = deployment();
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) expect(d.spec.template.metadata.labels[k]).toBe(v);
    expect(d.spec.template.spec.containers).toHaveLength(1);
    expect(container().args).toEqual(['consume']);
    expect(container().image).toMatch(/^tow-and-go-sink:/);
  });

  it('probes use /healthz and /readyz, routes of src/http.ts, on the named port = the HTTP_PORT default', () => {
    const http = read('src/http.ts');
    const c = container();
    const port = c.ports.find((p: Doc) => p.name === 'metrics');
    expect(port.containerPort).toBe(Number(SETTINGS.HTTP_PORT.default));
    expect(String(configMap().data.HTTP_PORT ?? SETTINGS.HTTP_PORT.default)).toBe(String(port.containerPort));
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe].filter(Boolean)) {
      expect(http).toContain(`'${probe.httpGet.path}'`);
      expect(probe.httpGet.port).toBe('metrics');
    }
    expect(configMap().data.HTTP_HOST).toBe('0.0.0.0');
  });

  it('the grace period outlasts the shutdown timeout', () => {
    const grace = deployment().spec.template.spec.terminationGracePeriodSeconds;
    const timeout = Number(configMap().data.SHUTDOWN_TIMEOUT_MS ?? SETTINGS.SHUTDOWN_TIMEOUT_MS.default);
    expect(timeout).toBeGreaterThanOrEqual(Number(SETTINGS.SHUTDOWN_TIMEOUT_MS.default));
    expect(grace * 1000).toBeGreaterThan(timeout);
  });

  it('every variable set is a setting of src/config.ts or an AWS/Node variable; envFrom names the ConfigMap and Secret', () => {
    const names = [...Object.keys(configMap().data), ...Object.keys(secret().stringData), ...(container().env ?? []).map((e: Doc) => e.name)];
    const unknown = names.filter((n) => !(n in SETTINGS) && !AWS_AND_NODE_VARIABLES.has(n));
    expect(unknown).toEqual([]);
    for (const n of Object.keys(secret().stringData)) expect(configMap().data, `${n}: in the Secret, not the ConfigMap`).not.toHaveProperty(n);
    for (const n of Object.keys(configMap().data)) {
      if (n in SETTINGS) expect(SETTINGS[n as keyof typeof SETTINGS].secret, `${n} is secret`).toBeFalsy();
    }
    const envFrom = [{ configMapRef: { name: configMap().metadata.name } }, { secretRef: { name: secret().metadata.name } }];
    expect(container().envFrom).toEqual(envFrom);
    for (const v of Object.values(secret().stringData)) expect(String(v)).toMatch(/example/i);
  });

  it('runs as 1000:1000, non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp, /tmp an emptyDir', () => {
    const sc = container().securityContext;
    expect(sc).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(read('Dockerfile')).toMatch(/^USER 1000:1000$/m);
    const mount = container().volumeMounts.find((m: Doc) => m.mountPath === '/tmp');
    const volume = deployment().spec.template.spec.volumes.find((v: Doc) => v.name === mount?.name);
    expect(volume?.emptyDir).toBeDefined();
  });

  it('requests at least the measured peak RSS, limits above the request', () => {
    expect(read('bench/README.md')).toMatch(new RegExp(`\\|\\s*${MEASURED_PEAK_RSS_MIB}\\s*\\|`));
    const r = container().resources;
    expect(mebibytes(r.requests.memory)).toBeGreaterThanOrEqual(MEASURED_PEAK_RSS_MIB);
    expect(mebibytes(r.limits.memory)).toBeGreaterThan(mebibytes(r.requests.memory));
    expect(r.requests.cpu).toBeDefined();
    expect(r.limits.cpu).toBeDefined();
  });

  it('the PodDisruptionBudget allows one pod down and selects the Deployment`s pods', () => {
    const pdb = one('pdb.yaml', 'PodDisruptionBudget');
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.selector.matchLabels).toEqual(deployment().spec.selector.matchLabels);
  });

  it('the ServiceMonitor scrapes /metrics as the job the alerts match', () => {
    const alertsJob = /job="([^"]+)"/.exec(read('ops/prometheus/alerts.yml'))?.[1];
    expect(alertsJob).toBe('tow-and-go-sink');
    const svc = one('servicemonitor.yaml', 'Service');
    const sm = one('servicemonitor.yaml', 'ServiceMonitor');
    expect(svc.spec.selector).toEqual(deployment().spec.selector.matchLabels);
    const port = svc.spec.ports.find((p: Doc) => p.name === 'metrics');
    expect(port.port).toBe(Number(SETTINGS.HTTP_PORT.default));
    expect(port.targetPort).toBe('metrics');
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels)) expect(svc.metadata.labels[k]).toBe(v);
    expect(sm.spec.endpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics' })]);
    expect(read('src/http.ts')).toContain(`'${sm.spec.endpoints[0].path}'`);
    // The job label: the Service's label named by jobLabel (the Operator's rule).
    expect(svc.metadata.labels[sm.spec.jobLabel]).toBe(alertsJob);
  });

  it('KEDA scales on the group`s lag, up to the partition count, for the ConfigMap`s group and topic', () => {
    const partitions = Number(/^TOPIC_PARTITIONS=(\d+)$/m.exec(read('stack/stack.sh'))?.[1]);
    expect(partitions).toBeGreaterThan(0);
    const so = one('keda-scaledobject.yaml', 'ScaledObject');
    expect(so.spec.scaleTargetRef.name).toBe(deployment().metadata.name);
    expect(so.spec.minReplicaCount).toBe(1);
    expect(so.spec.maxReplicaCount).toBe(partitions);
    expect(so.spec.triggers).toHaveLength(1);
    const t = so.spec.triggers[0];
    expect(t.type).toBe('kafka');
    expect(t.metadata.consumerGroup).toBe(configMap().data.KAFKA_GROUP_ID);
    expect(t.metadata.topic).toBe(configMap().data.KAFKA_TOPIC);
    expect(t.metadata.bootstrapServers).toBe(configMap().data.KAFKA_BROKERS);
    expect(Number(t.metadata.lagThreshold)).toBeGreaterThan(0);
    const auth = one('keda-scaledobject.yaml', 'TriggerAuthentication');
    expect(t.authenticationRef.name).toBe(auth.metadata.name);
    const secretNames = new Set(docs('secret.example.yaml').map((d) => d.metadata.name));
    for (const ref of auth.spec.secretTargetRef) {
      expect(secretNames.has(ref.name), ref.name).toBe(true);
      const s = one('secret.example.yaml', 'Secret', ref.name);
      expect(s.stringData, `${ref.name} has ${ref.key}`).toHaveProperty(ref.key);
    }
  });
});
