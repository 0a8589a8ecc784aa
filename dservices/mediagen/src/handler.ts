/**
 * The MediaGen request handler: routes, methods, and typed errors as problems.
 *
 *   POST /transform?{params}   body: the image (optionally preceded by a watermark image, see
 *                              `framing.ts`) -> the transformed image
 *   POST /info                 body: the image -> JSON metadata
 */
import type { DServiceHandler, DServiceRequest, DServiceResponse } from '@cgn/sdk';
import type { MediaGenConfig } from './config.js';
import { CONTENT_TYPES } from './encode.js';
import { MediaGenError, MethodNotAllowedError, NotFoundError } from './errors.js';
import { splitBody, WATERMARK_LENGTH_HEADER } from './framing.js';
import { imageInfo } from './info.js';
import { parseInfoQuery, parseTransformQuery } from './params.js';
import { deterministicResponse, problemResponse } from './respond.js';
import { configureSharp } from './sharp-setup.js';
import { Transformer } from './transform.js';

type Route = (req: DServiceRequest) => Promise<DServiceResponse>;

export function createHandler(config: MediaGenConfig): DServiceHandler {
  configureSharp();
  const transformer = new Transformer(config);

  const routes: Readonly<Record<string, Route>> = {
    '/transform': async (req) => {
      const { image, watermark } = splitBody(req.body, req.headers[WATERMARK_LENGTH_HEADER]);
      const plan = parseTransformQuery(req.query, watermark);
      const out = await transformer.transform(image, plan);
      return deterministicResponse(out.data, CONTENT_TYPES[out.format]);
    },
    '/info': async (req) => {
      parseInfoQuery(req.query);
      const info = await imageInfo(req.body, config);
      return deterministicResponse(Buffer.from(JSON.stringify(info)), 'application/json');
    },
  };

  return async (req) => {
    try {
      const route = Object.hasOwn(routes, req.path) ? routes[req.path] : undefined;
      if (route === undefined) throw new NotFoundError(`no endpoint ${req.path}; MediaGen has POST /transform and POST /info`);
      if (req.method !== 'POST') throw new MethodNotAllowedError('POST', `${req.path} takes POST, not ${req.method}`);
      return await route(req);
    } catch (err) {
      if (err instanceof MediaGenError) return problemResponse(err);
      throw err;
    }
  };
}
