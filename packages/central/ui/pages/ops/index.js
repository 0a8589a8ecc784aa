// The operator pages (staff roles; the monitor role sees them read-only: no buttons that change
// anything, and the audit log, which central keeps for administrators and operators, says so).
import { Overview } from './overview.js';
import { Nodes } from './nodes.js';
import { Miners } from './miners.js';
import { Alerts } from './alerts.js';
import { Billing } from './billing.js';
import { Audit } from './audit.js';
import { DServices } from './dservices.js';

export const routes = {
  '/ops/overview': Overview,
  '/ops/nodes': Nodes,
  '/ops/miners': Miners,
  '/ops/alerts': Alerts,
  '/ops/dservices': DServices,
  '/ops/billing': Billing,
  '/ops/audit': Audit,
};

export const nav = [
  { href: '#/ops/overview', label: 'Overview' },
  { href: '#/ops/nodes', label: 'Nodes and queues' },
  { href: '#/ops/miners', label: 'Miners' },
  { href: '#/ops/alerts', label: 'Alerts' },
  { href: '#/ops/dservices', label: 'DServices' },
  { href: '#/ops/billing', label: 'Revenue and cycles' },
  // Central keeps the audit log for administrators and operators (GET /v1/audit).
  { href: '#/ops/audit', label: 'Audit log', roles: ['administrator', 'operator'] },
];
