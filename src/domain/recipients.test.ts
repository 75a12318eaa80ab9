import { describe, expect, it } from "vitest";
import { alertTeamMembers, mergeRecipients } from "./recipients.ts";

describe("alert recipients", () => {
  const permissions = [
    {
      subject: { kind: "User" as const, name: "dave@example.com" },
      rights: ["Monitoring" as const, "ReceiveAlerts" as const],
    },
    { subject: { kind: "User" as const, name: "erin@example.com" }, rights: ["Deploy" as const] },
    { subject: { kind: "Group" as const, name: "crm-devs" }, rights: ["ReceiveAlerts" as const] },
    {
      subject: { kind: "User" as const, name: "system:serviceaccount:x:y" },
      rights: ["ReceiveAlerts" as const],
    },
  ];

  it("are the users with ReceiveAlerts that have an email-style name", () => {
    expect(alertTeamMembers(permissions)).toEqual([
      { key: "user:dave@example.com", displayName: "dave@example.com", email: "dave@example.com" },
    ]);
    expect(alertTeamMembers(undefined)).toEqual([]);
  });

  it("reach a contact who is also a team member once", () => {
    const contacts = [{ key: "contact:dave", displayName: "Dave", email: "Dave@example.com" }];
    expect(mergeRecipients(contacts, alertTeamMembers(permissions))).toEqual(contacts);
  });
});
