-- Innen, stop 9: a collection keeps what it told the banks about its mandate, and the amendment it carried.
-- For a database made before 2026-11-22; run once, in one transaction.
BEGIN;
ALTER TABLE collection ADD COLUMN mandate_reference VARCHAR(35);
ALTER TABLE collection ADD COLUMN debtor_iban VARCHAR(34);
ALTER TABLE collection ADD COLUMN debtor_bic VARCHAR(11);
ALTER TABLE collection ADD COLUMN creditor_id VARCHAR(35);
ALTER TABLE collection ADD COLUMN original_mandate_reference VARCHAR(35);
ALTER TABLE collection ADD COLUMN original_creditor_id VARCHAR(35);
ALTER TABLE collection ADD COLUMN original_debtor_iban VARCHAR(34);
ALTER TABLE collection ADD COLUMN debtor_agent_changed BOOLEAN DEFAULT false NOT NULL;
CREATE INDEX ix_collection_mandate_id ON collection (mandate_id);
COMMIT;
