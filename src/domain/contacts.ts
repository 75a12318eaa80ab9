// Contact rules: every referenced TechnicalContact must exist; the first is primary; changes are announced.

export interface ContactFacts {
  name: string;
  exists: boolean;
  mxid?: string;
}

export interface ContactResolution {
  count: number;
  primary?: string;
  missing: string[];
  withoutMxid: string[];
  condition: { status: "True" | "False"; reason: string; message: string };
}

export function resolveContacts(
  referenced: string[],
  found: (name: string) => { mxid?: string } | undefined,
): ContactResolution {
  const facts: ContactFacts[] = referenced.map((name) => {
    const c = found(name);
    return { name, exists: !!c, mxid: c?.mxid };
  });
  const missing = facts.filter((f) => !f.exists).map((f) => f.name);
  const withoutMxid = facts.filter((f) => f.exists && !f.mxid).map((f) => f.name);
  const condition = missing.length
    ? {
        status: "False" as const,
        reason: "ContactNotFound",
        message: `TechnicalContact(s) not found in this namespace: ${missing.join(", ")}. Create them or fix spec.technicalContacts.`,
      }
    : {
        status: "True" as const,
        reason: "ContactsFound",
        message: `technical contact(s): ${referenced.join(", ")}`,
      };
  return { count: referenced.length, primary: referenced[0], missing, withoutMxid, condition };
}

/** Who became a contact and who stopped being one, since the contacts last announced. */
export function contactChanges(
  announced: string[] | undefined,
  current: string[],
): { added: string[]; removed: string[] } {
  const before = new Set(announced ?? []);
  const after = new Set(current);
  return { added: current.filter((c) => !before.has(c)), removed: [...before].filter((c) => !after.has(c)) };
}
