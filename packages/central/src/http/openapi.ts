/** The OpenAPI 3.1 document, generated from the route table and its JSON Schemas. */
import type { RouteDef } from './routes.js';

const PROBLEM = {
  type: 'object',
  description: 'RFC 9457 problem details',
  properties: {
    type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' },
    code: { type: 'string', description: 'stable reason: bad_request, unauthorized, forbidden, not_found, conflict, locked, mfa_required, weak_password, rate_limited, payload_too_large, ...' },
  },
  required: ['type', 'title', 'status', 'code'],
};

export function openApiDocument(routes: readonly RouteDef[], info: { version: string; serverUrl?: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const parameters: unknown[] = [];
    const pp = (r.params?.['properties'] ?? {}) as Record<string, unknown>;
    for (const [name, schema] of Object.entries(pp)) parameters.push({ name, in: 'path', required: true, schema });
    const qp = (r.query?.['properties'] ?? {}) as Record<string, unknown>;
    for (const [name, schema] of Object.entries(qp)) parameters.push({ name, in: 'query', required: false, schema });
    const ok = String(r.status ?? 200);
    const responses: Record<string, unknown> = {
      [ok]: ok === '204' ? { description: 'Done' } : { description: 'Success', content: { 'application/json': { schema: { type: 'object' } } } },
      '400': { $ref: '#/components/responses/Problem' },
      '413': { $ref: '#/components/responses/Problem' },
      '429': { $ref: '#/components/responses/TooMany' },
    };
    if (r.auth !== 'public') {
      responses['401'] = { $ref: '#/components/responses/Problem' };
      responses['403'] = { $ref: '#/components/responses/Problem' };
    }
    const op: Record<string, unknown> = {
      operationId: `${r.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      summary: r.summary,
      tags: [r.tag],
      parameters,
      responses,
      'x-cgn-auth': r.auth,
      ...(r.roles ? { 'x-cgn-roles': r.roles } : {}),
      security: r.auth === 'public' ? [] : r.auth === 'session' ? [{ session: [] }] : [{ session: [] }, { apiKey: [] }, { oauth2: [] }],
    };
    if (r.body) {
      const content: Record<string, unknown> = { 'application/json': { schema: r.body } };
      if (r.url === '/oauth/token') content['application/x-www-form-urlencoded'] = { schema: r.body };
      op['requestBody'] = { required: true, content };
    }
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'CGN Central Service',
      version: info.version,
      description:
        'Accounts, credentials, API keys, OAuth2 tokens, DService and node registries, node selection and the audit log of a CGN network. ' +
        'Log in with POST /v1/auth/login and send the returned session token as "Authorization: Bearer cgs_...". ' +
        'API keys ("cgn_...") and access tokens (JWT) are accepted only where noted (x-cgn-auth: principal). Errors are application/problem+json.',
    },
    ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
    paths,
    components: {
      securitySchemes: {
        session: { type: 'http', scheme: 'bearer', description: 'session token from POST /v1/auth/login (cgs_...)' },
        apiKey: { type: 'http', scheme: 'bearer', description: 'API key (cgn_...)' },
        oauth2: { type: 'oauth2', flows: { clientCredentials: { tokenUrl: '/oauth/token', scopes: { work: 'send work', select: 'ask for nodes' } } } },
      },
      schemas: { Problem: PROBLEM },
      responses: {
        Problem: { description: 'Problem', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
        TooMany: {
          description: 'Rate limited or locked out; see Retry-After',
          headers: { 'Retry-After': { schema: { type: 'integer' }, description: 'seconds' } },
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        },
      },
    },
  };
}
