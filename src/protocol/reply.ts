/** The Postfix policy-delegation reply (SMTPD_POLICY_README): an action in, reply bytes out. */

/**
 * One reply. The action must be printable ASCII with no line break: Postfix reads
 * `action=…` up to LF, and a CR would make the reply unparsable (POSTFIX-FACTS 1).
 */
export function encodeReply(action: string): Buffer {
  if (!/^[\x20-\x7e]+$/.test(action)) {
    throw new Error('reply action must be non-empty printable ASCII');
  }
  return Buffer.from(`action=${action}\n\n`, 'latin1');
}
