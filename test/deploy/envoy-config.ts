/**
 * A strict check of Envoy configuration (a bootstrap, or any Envoy message
 * such as a file-based SDS DiscoveryResponse) against Envoy's published
 * protos, walked field by field: protobufjs' fromObject ignores what it does
 * not know, Envoy does not. It reports, each with the path that holds it
 * (`static_resources.listeners[0].filter_chains[0]…`):
 *
 * - a key that is no field of its message (proto names; JSON camelCase too),
 *   or the same field under both names; `null` anywhere but a Struct/Value;
 * - a repeated field that is no array, a map field that is no object, a
 *   scalar of the wrong JSON type or range, an enum name (or number) the
 *   enum does not define;
 * - two members of one oneof, none of a oneof marked `(validate.required)`;
 * - a `google.protobuf.Any` whose "@type" names no loaded message
 *   (envoyConfigProtos lists the extension protos we load);
 * - a deprecated field or enum value;
 * - the cheap part of `(validate.rules)`: message.required, string and bytes
 *   lengths, numeric and duration bounds, repeated and map sizes (and the
 *   rules of repeated items), checked on default values as PGV does.
 *
 * Well-known types take their JSON forms: Duration and Timestamp strings
 * ("15s"), wrappers as bare scalars, Struct/Value/ListValue as any JSON.
 */
import type { Enum, Field, MapField, OneOf, Root, Type } from 'protobufjs';
import { loadEnvoyRoot } from '@keyfleet/service-kit';

/** The Envoy protos loaded: the bootstrap and every extension an @type may name. */
export const envoyConfigProtos: readonly string[] = [
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
];

let loaded: Root | undefined;
/** Envoy's protos (envoyConfigProtos and their imports), loaded once and resolved. */
export function envoyConfigRoot(): Root {
  if (!loaded) {
    loaded = loadEnvoyRoot(...envoyConfigProtos);
    loaded.resolveAll();
  }
  return loaded;
}

/** Every problem in a bootstrap, as "path: message"; empty when it is sound. */
export function checkEnvoyBootstrap(config: unknown, root: Root = envoyConfigRoot()): string[] {
  return checkEnvoyMessage('envoy.config.bootstrap.v3.Bootstrap', config, root);
}

/** Every problem in `value` read as the message `typeName` ("envoy.service.discovery.v3.DiscoveryResponse"). */
export function checkEnvoyMessage(
  typeName: string,
  value: unknown,
  root: Root = envoyConfigRoot(),
): string[] {
  const errors: string[] = [];
  new Checker(root, errors).message(root.lookupType(typeName), value, '');
  return errors;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isEnum = (type: Type | Enum): type is Enum => 'valuesById' in type;
const typeName = (type: Type | Enum) => type.fullName.replace(/^\./, '');
const jsonNameOf = (name: string) => name.replace(/_(.)/g, (_, next: string) => next.toUpperCase());
const at = (path: string, key: string) => (path ? `${path}.${key}` : key);
const shown = (path: string) => path || '(top level)';
const describe = (value: unknown) =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : `${typeof value} ${JSON.stringify(value)}`;

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        row[j - 1]! + 1,
        previous[j]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length]!;
}

function suggestion(key: string, candidates: readonly string[]): string {
  const lower = key.toLowerCase();
  const containing = candidates.find((name) => lower.length >= 3 && name.toLowerCase().includes(lower));
  if (containing) return ` (did you mean ${containing}?)`;
  const near = candidates
    .map((name) => [name, distance(key.toLowerCase(), name.toLowerCase())] as const)
    .filter(([, d]) => d <= Math.max(2, Math.floor(key.length / 4)))
    .sort((a, b) => a[1] - b[1])[0];
  return near ? ` (did you mean ${near[0]}?)` : '';
}

/** A field's `(validate.rules)`, merged from protobufjs' parsedOptions (which keeps empty messages such as `gt: {}`). */
function rulesOf(field: Field): Json | undefined {
  const parsed = (field as Field & { parsedOptions?: Json[] | null }).parsedOptions;
  let rules: Json | undefined;
  for (const option of parsed ?? []) {
    const value = option['(validate.rules)'];
    if (isObject(value)) rules = merge(rules ?? {}, value);
  }
  return rules;
}

function merge(into: Json, from: Json): Json {
  for (const [key, value] of Object.entries(from)) {
    into[key] = isObject(value) && isObject(into[key]) ? merge(into[key], value) : value;
  }
  return into;
}

const int32Types = new Set(['int32', 'sint32', 'sfixed32']);
const uint32Types = new Set(['uint32', 'fixed32']);
const int64Types = new Set(['int64', 'sint64', 'sfixed64']);
const uint64Types = new Set(['uint64', 'fixed64']);
const floatTypes = new Set(['double', 'float']);

const wrappers: Record<string, string> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};

/** Protobuf JSON durations: "15s", "0.5s", "-1.000000001s". */
const durationPattern = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const maxDurationSeconds = 315_576_000_000;

/** Seconds of a Duration string (for bounds), or undefined when malformed. */
function durationSeconds(text: string): number | undefined {
  const match = durationPattern.exec(text);
  if (!match) return undefined;
  const seconds = Number(match[2]) + Number(`0.${match[3] ?? '0'}`);
  return match[1] ? -seconds : seconds;
}

/** A validate.rules Duration bound ({seconds, nanos}, possibly {}) in seconds. */
const boundSeconds = (bound: unknown) =>
  isObject(bound) ? Number(bound.seconds ?? 0) + Number(bound.nanos ?? 0) / 1e9 : Number.NaN;

class Checker {
  constructor(
    private readonly root: Root,
    private readonly errors: string[],
  ) {}

  private fail(path: string, message: string): void {
    this.errors.push(`${shown(path)}: ${message}`);
  }

  /** One value of message type `type` at `path`. */
  message(type: Type, value: unknown, path: string): void {
    const name = typeName(type);
    if (name === 'google.protobuf.Any') return this.any(value, path);
    if (this.wellKnown(name, value, path)) return;
    if (!isObject(value)) return this.fail(path, `expected an object (${name}), got ${describe(value)}`);

    const byJsonName = new Map(type.fieldsArray.map((field) => [jsonNameOf(field.name), field]));
    const present = new Map<Field, string>();
    for (const [key, fieldValue] of Object.entries(value)) {
      const field = (Object.hasOwn(type.fields, key) ? type.fields[key] : undefined) ?? byJsonName.get(key);
      const fieldPath = at(path, key);
      if (!field) {
        this.fail(
          fieldPath,
          `unknown field of ${name}${suggestion(
            key,
            type.fieldsArray.map((f) => f.name),
          )}`,
        );
        continue;
      }
      const other = present.get(field);
      if (other !== undefined) {
        this.fail(fieldPath, `${field.name} is set twice (as ${other} and as ${key})`);
        continue;
      }
      present.set(field, key);
      this.field(field, fieldValue, fieldPath);
    }

    for (const oneof of type.oneofsArray) this.oneof(oneof, present, path);
    for (const field of type.fieldsArray) {
      if (!present.has(field)) this.absent(field, path);
    }
  }

  private oneof(oneof: OneOf, present: Map<Field, string>, path: string): void {
    const set = oneof.fieldsArray.filter((field) => present.has(field)).map((field) => present.get(field)!);
    if (set.length > 1) {
      this.fail(path, `at most one of oneof ${oneof.name} may be set, got ${set.join(' and ')}`);
    } else if (set.length === 0 && oneof.options?.['(validate.required)'] === true) {
      this.fail(path, `one of oneof ${oneof.name} is required: ${oneof.oneof.join(', ')}`);
    }
  }

  /** A field left out: its required rules, and PGV's checks of the scalar default. */
  private absent(field: Field, path: string): void {
    const rules = rulesOf(field);
    if (!rules || field.partOf) return;
    const fieldPath = at(path, field.name);
    const message = rules.message;
    if (isObject(message) && message.required === true) return this.fail(fieldPath, 'is required');
    if (field.map) {
      const map = rules.map;
      if (isObject(map) && Number(map.min_pairs ?? 0) > 0) this.fail(fieldPath, 'is required (min_pairs)');
      return;
    }
    if (field.repeated) {
      const repeated = rules.repeated;
      if (isObject(repeated) && Number(repeated.min_items ?? 0) > 0)
        this.fail(fieldPath, `is required (at least ${Number(repeated.min_items)} items)`);
      return;
    }
    if (field.resolvedType) return;
    const defaults: Record<string, unknown> = { string: '', bytes: '', bool: false };
    this.rules(rules, field.type, defaults[field.type] ?? 0, `${fieldPath} (left out)`);
  }

  private field(field: Field, value: unknown, path: string): void {
    if (field.options?.deprecated === true) {
      const since: unknown = field.options['(envoy.annotations.deprecated_at_minor_version)'];
      this.fail(path, `deprecated${typeof since === 'string' ? ` (since API ${since})` : ''}`);
    }
    if (value === null && field.resolvedType?.fullName !== '.google.protobuf.Value') {
      return this.fail(path, 'null: protobuf JSON reads it as unset; leave the key out');
    }
    const rules = rulesOf(field);
    if (field.map) {
      if (!isObject(value)) return this.fail(path, `expected an object (map), got ${describe(value)}`);
      const keyType = (field as unknown as MapField).keyType;
      for (const [key, item] of Object.entries(value)) {
        const itemPath = `${path}[${JSON.stringify(key)}]`;
        this.mapKey(keyType, key, itemPath);
        this.single(field, item, itemPath, undefined);
      }
      const map = rules?.map;
      if (isObject(map) && Object.keys(value).length < Number(map.min_pairs ?? 0))
        this.fail(path, `needs at least ${Number(map.min_pairs)} entries`);
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(value))
        return this.fail(path, `expected an array (repeated), got ${describe(value)}`);
      const repeated = isObject(rules?.repeated) ? rules.repeated : undefined;
      if (repeated?.min_items !== undefined && value.length < Number(repeated.min_items))
        this.fail(path, `needs at least ${Number(repeated.min_items)} items, has ${value.length}`);
      if (repeated?.max_items !== undefined && value.length > Number(repeated.max_items))
        this.fail(path, `takes at most ${Number(repeated.max_items)} items, has ${value.length}`);
      const itemRules = isObject(repeated?.items) ? repeated.items : undefined;
      value.forEach((item, index) => this.single(field, item, `${path}[${index}]`, itemRules));
      return;
    }
    this.single(field, value, path, rules);
  }

  /** One element: a message, an enum or a scalar, with the rules that apply to it. */
  private single(field: Field, value: unknown, path: string, rules: Json | undefined): void {
    if (value === null && field.resolvedType?.fullName !== '.google.protobuf.Value') {
      return this.fail(path, 'null: protobuf JSON reads it as unset; leave it out');
    }
    const type = field.resolvedType;
    if (type && isEnum(type)) return this.enum(type, value, path);
    if (type) {
      const errorsBefore = this.errors.length;
      this.message(type, value, path);
      if (!rules || this.errors.length > errorsBefore) return;
      const wrapped = wrappers[typeName(type)];
      if (wrapped) this.rules(rules, wrapped, value, path);
      else if (typeName(type) === 'google.protobuf.Duration')
        this.durationRules(rules, value as string, path);
      return;
    }
    if (this.scalar(field.type, value, path) && rules) this.rules(rules, field.type, value, path);
  }

  private enum(type: Enum, value: unknown, path: string): void {
    const name = typeName(type);
    let valueName: string | undefined;
    if (typeof value === 'string') {
      if (Object.hasOwn(type.values, value)) valueName = value;
    } else if (typeof value === 'number' && Number.isInteger(value)) {
      valueName = type.valuesById[value];
    }
    if (valueName === undefined) {
      return this.fail(
        path,
        `${describe(value)} is no value of enum ${name} (one of ${Object.keys(type.values).join(', ')})${
          typeof value === 'string' ? suggestion(value, Object.keys(type.values)) : ''
        }`,
      );
    }
    if (type.valuesOptions?.[valueName]?.deprecated === true) this.fail(path, `${valueName} is deprecated`);
  }

  /** A scalar of proto type `type` in its JSON form; false when it is not one. */
  private scalar(type: string, value: unknown, path: string): boolean {
    const wrong = (expected: string) => {
      this.fail(path, `expected ${expected} (${type}), got ${describe(value)}`);
      return false;
    };
    if (type === 'string') return typeof value === 'string' || wrong('a string');
    if (type === 'bool') return typeof value === 'boolean' || wrong('true or false');
    if (type === 'bytes')
      return (typeof value === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) || wrong('base64');
    if (floatTypes.has(type)) {
      if (typeof value === 'number') return true;
      return (
        (typeof value === 'string' &&
          (/^(NaN|-?Infinity)$/.test(value) || /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(value))) ||
        wrong('a number')
      );
    }
    const integer =
      typeof value === 'number' && Number.isSafeInteger(value)
        ? BigInt(value)
        : typeof value === 'string' && /^-?\d+$/.test(value)
          ? BigInt(value)
          : undefined;
    const [min, max] = int32Types.has(type)
      ? [-(2n ** 31n), 2n ** 31n - 1n]
      : uint32Types.has(type)
        ? [0n, 2n ** 32n - 1n]
        : int64Types.has(type)
          ? [-(2n ** 63n), 2n ** 63n - 1n]
          : uint64Types.has(type)
            ? [0n, 2n ** 64n - 1n]
            : [undefined, undefined];
    if (min === undefined || max === undefined) return wrong(`a known scalar type`);
    if (integer === undefined) return wrong('an integer');
    if (integer < min || integer > max) return wrong(`an integer in [${min}, ${max}]`);
    return true;
  }

  private mapKey(keyType: string, key: string, path: string): void {
    if (keyType === 'string') return;
    if (keyType === 'bool') {
      if (key !== 'true' && key !== 'false') this.fail(path, 'a bool map key is "true" or "false"');
      return;
    }
    this.scalar(keyType, key, path);
  }

  /** The cheap (validate.rules) on a present scalar (or a wrapper's value). */
  private rules(rules: Json, type: string, value: unknown, path: string): void {
    if (type === 'string' || type === 'bytes') {
      const rule = rules[type];
      if (!isObject(rule) || typeof value !== 'string') return;
      if (rule.ignore_empty === true && value === '') return;
      const length = type === 'string' ? [...value].length : Buffer.from(value, 'base64').length;
      const bytes = type === 'string' ? Buffer.byteLength(value) : length;
      const check = (bound: unknown, ok: (n: number) => boolean, what: string) => {
        if (bound !== undefined && !ok(Number(bound))) this.fail(path, `${what} ${Number(bound)}`);
      };
      check(rule.min_len, (n) => length >= n, 'needs a length of at least');
      check(rule.max_len, (n) => length <= n, 'takes a length of at most');
      check(rule.min_bytes, (n) => bytes >= n, 'needs at least this many bytes:');
      check(rule.max_bytes, (n) => bytes <= n, 'takes at most this many bytes:');
      return;
    }
    const rule = rules[type];
    if (!isObject(rule) || value === undefined) return;
    this.bounds(rule, Number(value), path, String);
  }

  private durationRules(rules: Json, value: string, path: string): void {
    const rule = rules.duration;
    const seconds = durationSeconds(value);
    if (!isObject(rule) || seconds === undefined) return;
    const bounds: Json = {};
    for (const key of ['gt', 'gte', 'lt', 'lte']) if (key in rule) bounds[key] = boundSeconds(rule[key]);
    this.bounds(bounds, seconds, path, (n) => `${n}s`);
  }

  private bounds(rule: Json, value: number, path: string, format: (n: number) => string): void {
    const checks: [string, (bound: number) => boolean, string][] = [
      ['gt', (b) => value > b, 'greater than'],
      ['gte', (b) => value >= b, 'at least'],
      ['lt', (b) => value < b, 'less than'],
      ['lte', (b) => value <= b, 'at most'],
    ];
    for (const [key, ok, words] of checks) {
      if (rule[key] === undefined) continue;
      const bound = Number(rule[key]);
      if (!ok(bound)) this.fail(path, `must be ${words} ${format(bound)}, is ${format(value)}`);
    }
  }

  /** google.protobuf.Any: "@type" names a loaded message; the rest is that message. */
  private any(value: unknown, path: string): void {
    if (!isObject(value))
      return this.fail(path, `expected an object (google.protobuf.Any), got ${describe(value)}`);
    const typePath = `${path}["@type"]`;
    const url = value['@type'];
    if (typeof url !== 'string') return this.fail(typePath, 'is required (type.googleapis.com/<message>)');
    const slash = url.lastIndexOf('/');
    const name = url.slice(slash + 1);
    if (slash < 0 || !name)
      return this.fail(typePath, `${url} is no type URL (type.googleapis.com/<message>)`);
    let type: Type;
    try {
      type = this.root.lookupType(`.${name}`);
    } catch {
      return this.fail(
        typePath,
        `${name} is not a loaded message: no such Envoy type, or its .proto is missing from envoyConfigProtos`,
      );
    }
    const rest = { ...value };
    delete rest['@type'];
    const special = typeName(type) in wrappers || this.isSpecialJson(typeName(type));
    if (special) {
      // A well-known type with its own JSON form sits under "value".
      const extra = Object.keys(rest).filter((key) => key !== 'value');
      for (const key of extra) this.fail(at(path, key), `unknown field of Any holding ${typeName(type)}`);
      this.message(type, rest.value, at(path, 'value'));
      return;
    }
    this.message(type, rest, path);
  }

  private isSpecialJson(name: string): boolean {
    return [
      'google.protobuf.Duration',
      'google.protobuf.Timestamp',
      'google.protobuf.Struct',
      'google.protobuf.Value',
      'google.protobuf.ListValue',
      'google.protobuf.FieldMask',
      'google.protobuf.Any',
    ].includes(name);
  }

  /** Well-known types with their own JSON form; true when `name` is one (checked here). */
  private wellKnown(name: string, value: unknown, path: string): boolean {
    const wrapped = wrappers[name];
    if (wrapped) {
      this.scalar(wrapped, value, path);
      return true;
    }
    switch (name) {
      case 'google.protobuf.Duration': {
        const seconds = typeof value === 'string' ? durationSeconds(value) : undefined;
        if (seconds === undefined)
          this.fail(path, `expected a Duration string such as "15s", got ${describe(value)}`);
        else if (Math.abs(seconds) > maxDurationSeconds) this.fail(path, 'Duration out of range');
        return true;
      }
      case 'google.protobuf.Timestamp':
        if (
          typeof value !== 'string' ||
          !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(value) ||
          Number.isNaN(Date.parse(value))
        ) {
          this.fail(path, `expected an RFC 3339 Timestamp string, got ${describe(value)}`);
        }
        return true;
      case 'google.protobuf.Struct':
        if (!isObject(value)) this.fail(path, `expected an object (Struct), got ${describe(value)}`);
        return true;
      case 'google.protobuf.ListValue':
        if (!Array.isArray(value)) this.fail(path, `expected an array (ListValue), got ${describe(value)}`);
        return true;
      case 'google.protobuf.Value':
        return true;
      case 'google.protobuf.FieldMask':
        if (typeof value !== 'string') this.fail(path, `expected a FieldMask string, got ${describe(value)}`);
        return true;
      case 'google.protobuf.Empty':
        if (!isObject(value) || Object.keys(value).length > 0) this.fail(path, 'expected {} (Empty)');
        return true;
      default:
        return false;
    }
  }
}
