// The miner control app: a page served by the miner on 127.0.0.1. Preact + htm, no build step.
// The token comes from the URL fragment (#token=..., never sent to a server) or the sign-in
// form, and is kept in sessionStorage for this tab only.
import { h, render } from 'preact';
import { useEffect, useRef, useState, useCallback } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

const html = htm.bind(h);
const TOKEN_KEY = 'cgn-miner-control-token';
const REFRESH_MS = 2000;

function takeTokenFromFragment() {
  const m = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, m[1]);
    history.replaceState(null, '', location.pathname + location.search);
  }
}

class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

async function api(token, path, { method = 'GET', body } = {}) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  let json = null;
  try {
    json = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const e = json && json.error ? json.error : { code: 'http_' + res.status, message: `the miner answered ${res.status}` };
    throw new ApiError(res.status, e.code, e.message, e.field);
  }
  return json;
}

const STATE_TEXT = {
  connected: 'Working: connected to its node',
  connecting: 'Connecting to its node',
  draining: 'Pausing: finishing the work in flight',
  paused: 'Paused: out of the node\'s pool',
  starting: 'Starting',
  stopping: 'Stopping: finishing the work in flight',
  stopped: 'Stopped',
};

function fmtTime(ms) {
  return new Date(ms).toLocaleTimeString();
}

function SignIn({ onToken, error }) {
  const [value, setValue] = useState('');
  const submit = (e) => {
    e.preventDefault();
    if (value.trim() !== '') onToken(value.trim());
  };
  return html`<main><section class="signin wide">
    <h2>Sign in to this miner</h2>
    <p>Paste the control token. It is in the file <span class="mono">&lt;miner key&gt;.control-token</span> next to the miner's key (for example <span class="mono">~/.cgn/miner-key.pem.control-token</span>), readable only by you. The link the miner printed at start signs you in without it.</p>
    <form onSubmit=${submit}>
      <label for="token">Control token</label>
      <input id="token" type="password" autocomplete="off" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} aria-describedby="token-error" />
      <div class="controls"><button type="submit">Sign in</button></div>
      <p id="token-error" class="error" role="alert">${error ?? ''}</p>
    </form>
  </section></main>`;
}

function Controls({ status, act, busy }) {
  const s = status.state;
  const running = s === 'connected' || s === 'connecting' || s === 'paused' || s === 'draining';
  const ownerPaused = status.hold === 'owner';
  return html`<div class="controls" role="group" aria-label="Miner controls">
    <button type="button" onClick=${() => act('start')} disabled=${busy || s !== 'stopped'}>Start</button>
    <button type="button" onClick=${() => act('pause')} disabled=${busy || !running || ownerPaused}>Pause</button>
    <button type="button" onClick=${() => act('resume')} disabled=${busy || !running || !ownerPaused}>Resume</button>
    <button type="button" class="secondary" onClick=${() => act('stop')} disabled=${busy || !running}>Stop</button>
  </div>`;
}

function StatusCard({ status, act, busy, message }) {
  return html`<section class="wide" aria-labelledby="status-h">
    <h2 id="status-h">Status</h2>
    <p><span class=${'state ' + status.state} data-testid="state">${status.state}</span> ${STATE_TEXT[status.state] ?? ''}</p>
    <p data-testid="reason">${status.hold === null ? 'Taking work when the node has some.' : `Not taking work: ${status.reason}.`}</p>
    <${Controls} status=${status} act=${act} busy=${busy} />
    <p class="status-line" aria-hidden="true">${message}</p>
    <dl>
      <dt>Node</dt><dd class="mono">${status.nodeUrl}</dd>
      <dt>Tier</dt><dd>${status.tier}</dd>
      <dt>Slots</dt><dd>${status.slots.advertised} advertised of ${status.slots.configured}</dd>
      <dt>In flight</dt><dd>${status.inFlight}</dd>
      <dt>Owner CPU use</dt><dd>${status.ownerCpuShare === null ? html`<span class="unknown">unknown</span>` : `${Math.round(status.ownerCpuShare * 100)}%`}</dd>
    </dl>
    ${status.isolationWarnings.length > 0 && html`<p class="error">Isolation: ${status.isolationWarnings.join(' ')}</p>`}
  </section>`;
}

function WorkChart({ history }) {
  const ref = useRef(null);
  const plot = useRef(null);
  // Units answered so far, over time (uPlot's time axis is in seconds).
  const xs = history.map(([t]) => t / 1000);
  const ys = history.map(([, n]) => n);
  useEffect(() => {
    const el = ref.current;
    if (el === null) return;
    const width = Math.max(280, el.clientWidth - 8);
    if (plot.current === null) {
      plot.current = new uPlot({
        width, height: 160,
        scales: { x: { time: true, range: (u, min, max) => (max - min < 60 ? [max - 60, max + 1] : [min, max]) }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        series: [{}, { label: 'units answered', stroke: '#0b5cad', width: 2, fill: 'rgba(11,92,173,0.12)', points: { show: false } }],
        axes: [{}, { size: 50 }],
        legend: { show: false },
      }, [xs, ys], el);
    } else plot.current.setData([xs, ys]);
  });
  useEffect(() => () => plot.current?.destroy(), []);
  return html`<div ref=${ref} role="img" aria-label=${`Units answered over time, ${ys.length > 0 ? ys[ys.length - 1] : 0} so far`}></div>`;
}

function WorkCard({ status }) {
  const rows = Object.entries(status.work.byDService).sort((a, b) => b[1] - a[1]);
  return html`<section aria-labelledby="work-h">
    <h2 id="work-h">Work done</h2>
    <p><strong data-testid="work-total">${status.work.total}</strong> units answered, ${status.work.failures} failed (since the miner process started)</p>
    <table><caption class="visually-hidden">Work units by DService</caption>
      <thead><tr><th scope="col">DService</th><th scope="col" class="num">Units</th></tr></thead>
      <tbody>${rows.map(([name, n]) => html`<tr key=${name}><td>${name}</td><td class="num">${n}</td></tr>`)}</tbody>
    </table>
    <${WorkChart} history=${status.history} />
  </section>`;
}

function EarningsCard({ status }) {
  const e = status.earnings;
  const c = e.chain;
  const unknown = (text) => html`<span class="unknown">${text}</span>`;
  const earned = new Map(e.perCycle.map((p) => [p.cycleId, p.amount]));
  const claimed = new Map(c.known ? c.perCycle.map((p) => [p.cycleId, p.amount]) : []);
  const cycles = [...new Set([...earned.keys(), ...claimed.keys()])].sort((a, b) => Number(b) - Number(a));
  return html`<section aria-labelledby="earn-h">
    <h2 id="earn-h">Earnings</h2>
    <dl>
      <dt>Payout address</dt><dd class="mono">${e.payoutAddress ?? unknown('none: earnings are held in the ledger until the miner gives one (--payout-address)')}</dd>
      ${c.known ? html`
        <dt>Tokens</dt><dd data-testid="tokens">${c.tokens} CGN</dd>
        <dt>Stake</dt><dd data-testid="stake">${c.stake} CGN${c.unbonding !== '0' ? ` (${c.unbonding} unbonding)` : ''}${c.banned ? ' (banned)' : ''}</dd>
        <dt>Claimed</dt><dd>${c.claimedTotal} CGN over ${c.perCycle.length} cycles${c.slashedTotal !== '0' ? `; ${c.slashedTotal} CGN slashed` : ''}</dd>
        <dt>Unclaimed</dt><dd>${unknown(e.unclaimed)}</dd>
        <dt>Read</dt><dd>block ${c.asOfBlock} at ${fmtTime(c.readAt)}</dd>` : html`
        <dt>Claimed per cycle</dt><dd>${unknown(c.reason)}</dd>
        <dt>Unclaimed</dt><dd>${unknown(e.unclaimed)}</dd>
        <dt>Stake</dt><dd>${unknown(c.reason)}</dd>`}
      <dt>Reputation</dt><dd data-testid="reputation">${status.reputation.known ? `${status.reputation.reason} (${fmtTime(status.reputation.time)})` : unknown(status.reputation.reason)}</dd>
    </dl>
    ${cycles.length > 0 && html`<table><caption>Per billing cycle: earned (as the node announced it) and claimed (on chain)</caption>
      <thead><tr><th scope="col">Cycle</th><th scope="col" class="num">Earned CGN</th><th scope="col" class="num">Claimed CGN</th></tr></thead>
      <tbody>${cycles.slice(0, 12).map((id) => html`<tr key=${id}><td>${id}</td><td class="num">${earned.get(id) ?? '–'}</td><td class="num">${claimed.get(id) ?? (c.known ? 'not yet' : '?')}</td></tr>`)}</tbody>
    </table>`}
    ${status.notices.length > 0 && html`<h3>From the node</h3><ul>${status.notices.map((n) => html`<li key=${n.time + n.kind}>${fmtTime(n.time)}: ${n.message}</li>`)}</ul>`}
  </section>`;
}

function SettingsCard({ token, status, announce, onSaved }) {
  const s = status.settings;
  const [form, setForm] = useState(null);
  const [error, setError] = useState(null);
  const f = form ?? { cpuCeilingPct: String(s.cpuCeilingPct), onlyWhenIdle: s.onlyWhenIdle, idleThresholdPct: String(s.idleThresholdPct), windows: s.windows.join(', ') };
  const set = (k) => (e) => setForm({ ...f, [k]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value });
  const save = async (e) => {
    e.preventDefault();
    setError(null);
    const body = {
      cpuCeilingPct: Number(f.cpuCeilingPct),
      onlyWhenIdle: f.onlyWhenIdle,
      idleThresholdPct: Number(f.idleThresholdPct),
      windows: f.windows.split(',').map((w) => w.trim()).filter((w) => w !== ''),
    };
    try {
      await api(token, '/api/settings', { method: 'PUT', body });
      setForm(null);
      announce('Settings saved.');
      onSaved();
    } catch (err) {
      setError(err.message);
      announce(`Settings not saved: ${err.message}`);
    }
  };
  return html`<section aria-labelledby="when-h">
    <h2 id="when-h">When it may work</h2>
    <form onSubmit=${save}>
      <label for="ceiling">CPU ceiling (% of this machine's CPUs)</label>
      <input id="ceiling" type="number" min="1" max="100" step="1" value=${f.cpuCeilingPct} onInput=${set('cpuCeilingPct')} aria-describedby="ceiling-hint" />
      <p id="ceiling-hint" class="hint">Applied by advertising fewer slots: the node sends no more units at once than fit in that share of the CPUs.</p>
      <label class="check"><input id="idle" type="checkbox" checked=${f.onlyWhenIdle} onChange=${set('onlyWhenIdle')} /> Only while the machine is idle</label>
      <label for="threshold">Busy above (% CPU used by you, not the miner)</label>
      <input id="threshold" type="number" min="1" max="100" step="1" value=${f.idleThresholdPct} onInput=${set('idleThresholdPct')} />
      <label for="windows">Time windows (local time, comma-separated)</label>
      <input id="windows" type="text" placeholder="22:00-07:00, 12:00-13:00" value=${f.windows} onInput=${set('windows')} aria-describedby="windows-hint" />
      <p id="windows-hint" class="hint">Empty: any time. A window like 22:00-07:00 runs over midnight.</p>
      <div class="controls"><button type="submit">Save</button></div>
      <p class="error" role="alert">${error ?? ''}</p>
    </form>
  </section>`;
}

function DServicesCard({ status }) {
  return html`<section class="wide" aria-labelledby="ds-h">
    <h2 id="ds-h">DServices installed</h2>
    <table>
      <thead><tr><th scope="col">Name</th><th scope="col">Version</th><th scope="col">State</th><th scope="col">Advertised</th><th scope="col">How</th><th scope="col" class="num">Units</th><th scope="col">Digest</th></tr></thead>
      <tbody>${status.dservices.map((d) => html`<tr key=${d.name}>
        <td>${d.name}</td><td>${d.version}</td><td>${d.state}</td><td>${d.advertised ? 'yes' : 'no'}</td><td>${d.source}</td>
        <td class="num">${d.workDone}</td><td class="mono" title=${d.digest}>${d.digest.slice(0, 12)}…</td></tr>`)}</tbody>
    </table>
  </section>`;
}

function LogCard({ lines }) {
  const ref = useRef(null);
  useEffect(() => {
    if (ref.current !== null) ref.current.scrollTop = ref.current.scrollHeight;
  }, [lines.length]);
  return html`<section class="wide" aria-labelledby="log-h">
    <h2 id="log-h">Recent log</h2>
    <pre class="log" ref=${ref} tabindex="0" aria-label="Recent log lines">${lines.map((l) => html`<div key=${l.seq} class=${l.level}>${fmtTime(l.time)} ${l.level.toUpperCase().padEnd(5)} ${l.msg}${l.fields ? ' ' + l.fields : ''}</div>`)}</pre>
  </section>`;
}

function Dashboard({ token, onUnauthorized }) {
  const [status, setStatus] = useState(null);
  const [lines, setLines] = useState([]);
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const [loadError, setLoadError] = useState(null);
  const lastSeq = useRef(0);
  const lastState = useRef(null);
  // Counts the actions (Pause, Resume...). A refresh asked before or during one may be answered
  // with the state from before it, after it: shown, it would undo what the action showed (the
  // buttons and the announcement flip back for a refresh period), so it is dropped.
  const actions = useRef(0);

  const refresh = useCallback(async () => {
    const asked = actions.current;
    try {
      const st = await api(token, '/api/status');
      if (asked === actions.current) {
        if (lastState.current !== null && lastState.current !== st.state) setMessage(`The miner is ${st.state}.`);
        lastState.current = st.state;
        setStatus(st);
      }
      setLoadError(null);
      const l = await api(token, `/api/logs?after=${lastSeq.current}`);
      if (l.lines.length > 0) {
        lastSeq.current = l.lines[l.lines.length - 1].seq;
        setLines((prev) => [...prev, ...l.lines].slice(-200));
      }
    } catch (err) {
      if (err.status === 401) onUnauthorized('That token was not accepted.');
      else setLoadError(`Cannot reach the miner: ${err.message}`);
    }
  }, [token]);

  useEffect(() => {
    refresh();
    const t = setInterval(refresh, REFRESH_MS);
    return () => clearInterval(t);
  }, [refresh]);

  const act = async (action) => {
    setBusy(true);
    actions.current++;
    try {
      const st = await api(token, `/api/${action}`, { method: 'POST' });
      actions.current++;
      lastState.current = st.state;
      setStatus(st);
      const said = {
        pause: st.inFlight > 0 ? `Pausing: out of the node's pool, ${st.inFlight} units finishing.` : 'Paused: out of the node\'s pool.',
        resume: 'Resumed: back in the node\'s pool.',
        stop: 'Stopping: finishing the work in flight, then stopping its DServices.',
        start: 'Starting the miner.',
      };
      setMessage(said[action]);
    } catch (err) {
      if (err.status === 401) onUnauthorized('That token was not accepted.');
      else setMessage(`${action} failed: ${err.message}`);
    } finally {
      setBusy(false);
    }
  };

  return html`
    <header>
      <h1>CGN miner</h1>
      ${status && html`<span class="id" title=${status.minerId}>${status.minerId.slice(0, 16)}</span>`}
      <button type="button" class="secondary" onClick=${() => onUnauthorized(null)}>Sign out</button>
    </header>
    <p class="visually-hidden" role="status" aria-live="polite" data-testid="live">${message}</p>
    <main>
      ${loadError && html`<section class="wide"><p class="error" role="alert">${loadError}</p></section>`}
      ${status === null ? html`<section class="wide"><p>Loading…</p></section>` : html`
        <${StatusCard} status=${status} act=${act} busy=${busy} message=${message} />
        <${WorkCard} status=${status} />
        <${EarningsCard} status=${status} />
        <${SettingsCard} token=${token} status=${status} announce=${setMessage} onSaved=${refresh} />
        <${DServicesCard} status=${status} />
        <${LogCard} lines=${lines} />`}
    </main>`;
}

function App() {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY));
  const [error, setError] = useState(null);
  const signIn = async (t) => {
    try {
      await api(t, '/api/status');
      sessionStorage.setItem(TOKEN_KEY, t);
      setError(null);
      setToken(t);
    } catch (err) {
      setError(err.status === 401 ? 'That token was not accepted. Check the .control-token file.' : `Cannot reach the miner: ${err.message}`);
    }
  };
  const signOut = (why) => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setError(why);
  };
  if (token === null) return html`<header><h1>CGN miner</h1></header><${SignIn} onToken=${signIn} error=${error} />`;
  return html`<${Dashboard} token=${token} onUnauthorized=${signOut} />`;
}

takeTokenFromFragment();
render(html`<${App} />`, document.getElementById('app'));
