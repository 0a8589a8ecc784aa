/**
 * Typed failures of a MediaGen request. Each one knows its HTTP status and becomes an
 * `application/problem+json` response (see `respond.ts`); anything else that is thrown is a bug
 * and surfaces as the SDK's 500.
 */
export class MediaGenError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    detail: string,
  ) {
    super(detail);
    this.name = new.target.name;
  }
}

/** A query parameter or request header has a wrong value, or is not allowed here. */
export class BadParameterError extends MediaGenError {
  constructor(
    /** Name of the offending query parameter or header. */
    readonly param: string,
    detail: string,
  ) {
    super(400, 'Bad Parameter', detail);
  }
}

/** The body is empty, not an image, of an unsupported format, corrupt or truncated. */
export class BadImageError extends MediaGenError {
  constructor(detail: string) {
    super(400, 'Bad Image', detail);
  }
}

/** The input, an intermediate or the output image has more pixels than this instance allows. */
export class ImageTooLargeError extends MediaGenError {
  constructor(detail: string) {
    super(413, 'Image Too Large', detail);
  }
}

/** Processing took longer than the configured time limit. Retrying the same request will not help. */
export class ProcessingTimeoutError extends MediaGenError {
  constructor(detail: string) {
    super(422, 'Processing Timeout', detail);
  }
}

export class NotFoundError extends MediaGenError {
  constructor(detail: string) {
    super(404, 'Not Found', detail);
  }
}

export class MethodNotAllowedError extends MediaGenError {
  constructor(
    readonly allow: string,
    detail: string,
  ) {
    super(405, 'Method Not Allowed', detail);
  }
}
