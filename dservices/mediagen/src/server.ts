/**
 * MediaGen DService: image processing with sharp (resize, crop, rotate, flip, formats, quality,
 * blur/sharpen, grayscale, text and image watermarks, metadata). See README.md.
 */
import { serveDService } from '@cgn/sdk';
import { loadConfig } from './config.js';
import { createHandler } from './handler.js';

const config = loadConfig(process.env);
const running = await serveDService(createHandler(config));
process.stderr.write(`mediagen dservice listening on ${running.address}\n`);
