'use strict';
// The OpenAPI document as a judge of live answers.
//
// validateDocument(doc): the document against the OpenAPI 3.1 specification
// (@readme/openapi-parser: the official 3.1 schema plus the checks it cannot express: path
// parameters, unique operationIds, $refs that resolve), and then every schema in it compiled by
// Ajv's JSON Schema 2020-12 dialect in strict mode (an unknown keyword or type, which the
// specification's own schema lets through, is an error here).
//
// new Checker(doc).check(exchange): one request and its response against the document. An
// answer the document does not describe is an error: an undocumented status for that route and
// method, a missing required header or one its schema refuses, another media type, a body the
// schema refuses (an extra or missing field, a wrong type or value), objects whose fields are
// not in the order of the schema's properties, a body where the document has none. Every
// (path, method, status) that passed is recorded, so that the suite can require each one the
// document lists to have been seen.

const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;

const SCHEMAS_ID = 'urn:browserd:openapi';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Whether an operation needs credentials (a security list without the empty alternative {}). */
function requiresAuth(doc, op) {
  const security = op.security ?? doc.security ?? [];
  return security.length > 0 && !security.some((s) => Object.keys(s).length === 0);
}

function newAjv() {
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  return ajv;
}

/** A deep copy with every "#/components/..." $ref pointing into the schema registered as SCHEMAS_ID. */
function rewriteRefs(node) {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node && typeof node === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')
        ? `${SCHEMAS_ID}#/$defs/${v.slice('#/components/schemas/'.length)}`
        : rewriteRefs(v);
    }
    return out;
  }
  return node;
}

/** Follows a Reference Object ({$ref: "#/..."}) inside the document. */
function deref(doc, obj) {
  let seen = 0;
  while (obj && typeof obj === 'object' && typeof obj.$ref === 'string') {
    if (!obj.$ref.startsWith('#/') || ++seen > 10) throw new Error(`unsupported $ref ${obj.$ref}`);
    obj = obj.$ref.slice(2).split('/').reduce((o, k) => (o ? o[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), doc);
    if (obj === undefined) throw new Error('a $ref that does not resolve');
  }
  return obj;
}

/** Every schema of the document with where it is: components, parameters, headers, media types. */
function* schemasOf(doc) {
  for (const [name, s] of Object.entries(doc.components?.schemas || {})) yield [`components.schemas.${name}`, s];
  for (const [name, p] of Object.entries(doc.components?.parameters || {})) yield [`components.parameters.${name}`, p.schema];
  for (const [name, h] of Object.entries(doc.components?.headers || {})) yield [`components.headers.${name}`, h.schema];
  for (const [name, r] of Object.entries(doc.components?.responses || {})) {
    for (const [media, c] of Object.entries(r.content || {})) yield [`components.responses.${name} ${media}`, c.schema];
  }
  for (const [p, item] of Object.entries(doc.paths || {})) {
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      for (const [status, r] of Object.entries(op.responses || {})) {
        if (r.$ref) continue;
        for (const [media, c] of Object.entries(r.content || {})) yield [`${m.toUpperCase()} ${p} ${status} ${media}`, c.schema];
      }
    }
  }
}

async function validateDocument(doc) {
  const { validate, compileErrors } = await import('@readme/openapi-parser');
  const copy = JSON.parse(JSON.stringify(doc)); // the parser dereferences in place
  const result = await validate(copy);
  if (!result.valid) throw new Error(`not a valid OpenAPI document:\n${compileErrors(result)}`);
  if (result.specification !== 'OpenAPI' || !/^3\.1\.\d+$/.test(doc.openapi)) {
    throw new Error(`expected OpenAPI 3.1, got ${result.specification} ${doc.openapi}`);
  }
  if (doc.jsonSchemaDialect && doc.jsonSchemaDialect !== 'https://spec.openapis.org/oas/3.1/dialect/base') {
    throw new Error(`unexpected jsonSchemaDialect ${doc.jsonSchemaDialect}`);
  }
  const ajv = newAjv();
  ajv.addSchema({ $id: SCHEMAS_ID, $defs: rewriteRefs(doc.components?.schemas || {}) });
  const problems = [];
  let count = 0;
  for (const [where, schema] of schemasOf(doc)) {
    if (schema === undefined) {
      problems.push(`${where}: no schema`);
      continue;
    }
    try {
      ajv.compile(rewriteRefs(schema));
      count++;
    } catch (e) {
      problems.push(`${where}: ${e.message}`);
    }
  }
  if (problems.length) throw new Error(`schemas that JSON Schema 2020-12 (strict) refuses:\n${problems.join('\n')}`);
  return { warnings: result.warnings || [], schemas: count };
}

/** "/browser_sessions/{session_id}" for "/browser_sessions/abc", or null. */
function matchPath(doc, path) {
  if (doc.paths[path]) return path;
  for (const template of Object.keys(doc.paths)) {
    const re = new RegExp('^' + template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}/]+\}/g, '[^/]+') + '$');
    if (re.test(path)) return template;
  }
  return null;
}

class Checker {
  constructor(doc) {
    this.doc = doc;
    this.ajv = newAjv();
    this.ajv.addSchema({ $id: SCHEMAS_ID, $defs: rewriteRefs(doc.components?.schemas || {}) });
    this.compiled = new Map();
    this.seen = new Set(); // "METHOD template status" that passed
  }

  validator(schema) {
    const key = JSON.stringify(schema);
    if (!this.compiled.has(key)) this.compiled.set(key, this.ajv.compile(rewriteRefs(schema)));
    return this.compiled.get(key);
  }

  /** Errors of value against schema (empty when valid). */
  schemaErrors(schema, value) {
    const v = this.validator(schema);
    if (v(value)) return [];
    return v.errors.map((e) => `${e.instancePath || '(root)'} ${e.message}${e.params ? ' ' + JSON.stringify(e.params) : ''}`);
  }

  /** The operation object, the security that applies to it, and the path template. */
  operation(method, path) {
    const template = matchPath(this.doc, path.split('?')[0]);
    if (!template) return { template: null };
    const item = this.doc.paths[template];
    const op = item[method.toLowerCase()];
    return { template, item, op, security: op ? op.security ?? this.doc.security ?? [] : null };
  }

  /** The response object the document gives for this exchange, or throws saying why there is none. */
  describedResponse(method, path, status) {
    const { template, item, op } = this.operation(method, path);
    const s = String(status);
    if (!template) {
      // not a documented path: the info description and components.responses say what it gets
      if (status === 404) return { key: `* (other paths) 404`, response: deref(this.doc, this.doc.components.responses.NotFound) };
      if (status === 401) return { key: `* (other paths) 401`, response: deref(this.doc, this.doc.components.responses.Unauthorized) };
      throw new Error(`${method} ${path}: ${status} for a path the document does not list (only 401 or 404 are described)`);
    }
    if (!op) {
      // a method the path does not list: the 405 its operations document
      const ops = METHODS.filter((m) => item[m]).map((m) => item[m]);
      if (status === 405 && ops.every((o) => o.responses['405'])) {
        // seen for every operation of the path: each documents the 405 of the methods it does not list
        const keys = METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${template} 405`);
        return { key: keys, response: deref(this.doc, ops[0].responses['405']), allow: METHODS.filter((m) => item[m]) };
      }
      if (status === 401 && ops.some((o) => requiresAuth(this.doc, o))) {
        return { key: `${method.toUpperCase()} ${template} 401`, response: deref(this.doc, this.doc.components.responses.Unauthorized) };
      }
      throw new Error(`${method} ${path}: ${status} for a method ${template} does not list (the document describes 405${ops.some((o) => requiresAuth(this.doc, o)) ? ' and 401' : ''})`);
    }
    const r = op.responses[s];
    if (!r) {
      throw new Error(`${method} ${path}: status ${status} is not among the documented responses of ${method.toUpperCase()} ${template} (${Object.keys(op.responses).join(', ')})`);
    }
    return { key: `${method.toUpperCase()} ${template} ${s}`, response: deref(this.doc, r), allow: METHODS.filter((m) => item[m]) };
  }

  /**
   * exchange: {method, path, status, headers (lower-case names), body (Buffer)}. Throws an Error
   * listing everything the document does not describe; returns the parsed JSON body (or the text).
   */
  check(ex) {
    const { key, response, allow } = this.describedResponse(ex.method, ex.path, ex.status);
    const problems = [];
    const where = `${ex.method} ${ex.path} -> ${ex.status}`;
    // headers the document requires, and their values
    for (const [name, h0] of Object.entries(response.headers || {})) {
      const h = deref(this.doc, h0);
      const value = ex.headers[name.toLowerCase()];
      if (value === undefined) {
        if (h.required) problems.push(`header ${name} is required and missing`);
        continue;
      }
      const typed = h.schema && (h.schema.type === 'integer' || h.schema.type === 'number') && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
      for (const e of this.schemaErrors(h.schema, typed)) problems.push(`header ${name}: ${value}: ${e}`);
    }
    if (ex.status === 405 && allow) {
      const got = (ex.headers.allow || '').split(',').map((m) => m.trim().toLowerCase()).filter(Boolean).sort();
      const want = [...allow].sort();
      if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`Allow: ${ex.headers.allow} but the document lists ${want.join(', ')} for this path`);
    }
    // the body
    let parsed;
    const noBody = ex.method === 'HEAD' || ex.status === 204;
    const content = response.content || null;
    if (!content) {
      if (ex.body.length) problems.push(`a body (${ex.body.length} bytes) where the document describes none`);
    } else {
      const media = (ex.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
      const mt = content[media];
      if (!mt) problems.push(`Content-Type ${ex.headers['content-type']} where the document describes ${Object.keys(content).join(', ')}`);
      else if (noBody) {
        if (ex.body.length) problems.push('HEAD answered with a body');
      } else {
        const text = ex.body.toString('utf8');
        if (media === 'application/json') {
          try {
            parsed = JSON.parse(text);
          } catch (e) {
            problems.push(`body is not JSON: ${e.message}: ${text.slice(0, 200)}`);
          }
        } else {
          parsed = text;
        }
        if (parsed !== undefined) {
          for (const e of this.schemaErrors(mt.schema, parsed)) problems.push(`body: ${e}`);
          if (!problems.length) this.checkOrder(mt.schema, parsed, '', problems);
        }
      }
    }
    if (problems.length) {
      throw new Error(`${where}: not as the document (${key}) describes:\n  ${problems.join('\n  ')}\n  body: ${ex.body.toString('utf8').slice(0, 600)}`);
    }
    for (const k of [].concat(key)) this.seen.add(k);
    return parsed;
  }

  /** Objects' fields in the order of their schema's properties (recursively). */
  checkOrder(schema0, value, at, problems) {
    let schema = schema0;
    if (schema && schema.$ref) schema = deref(this.doc, schema);
    if (!schema || typeof schema !== 'object') return;
    for (const k of ['oneOf', 'anyOf', 'allOf']) {
      for (const sub of schema[k] || []) {
        if (k === 'allOf' || this.schemaErrors(sub, value).length === 0) this.checkOrder(sub, value, at, problems);
      }
    }
    if (Array.isArray(value) && schema.items) {
      value.forEach((v, i) => this.checkOrder(schema.items, v, `${at}/${i}`, problems));
      return;
    }
    if (value && typeof value === 'object' && !Array.isArray(value) && schema.properties) {
      const order = Object.keys(schema.properties);
      const keys = Object.keys(value).filter((k) => order.includes(k));
      const want = order.filter((k) => k in value);
      if (JSON.stringify(keys) !== JSON.stringify(want)) problems.push(`${at || '(root)'}: fields in the order ${keys.join(',')}, the schema's order is ${want.join(',')}`);
      for (const k of keys) this.checkOrder(schema.properties[k], value[k], `${at}/${k}`, problems);
    }
  }

  /** Every "METHOD template status" the document lists (405s of unlisted methods excluded). */
  documented() {
    const out = [];
    for (const [p, item] of Object.entries(this.doc.paths)) {
      for (const m of METHODS) {
        if (!item[m]) continue;
        for (const s of Object.keys(item[m].responses)) out.push(`${m.toUpperCase()} ${p} ${s}`);
      }
    }
    return out;
  }
}

module.exports = { validateDocument, Checker, deref, matchPath, requiresAuth, METHODS };
