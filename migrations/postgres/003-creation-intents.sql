-- Creation intents (issue 10): a token object being made is named here, by the creation id
-- written into its CKA_ID, before the token call; the transaction that records what was made
-- removes it. Reconciliation never destroys an object a live intent names.
CREATE TABLE p11kms_intents (
  creation_id text PRIMARY KEY,
  created_at  bigint NOT NULL,
  doc         json   NOT NULL
);
