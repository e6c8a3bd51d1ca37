-- Innen shared database, postgresql dialect.
-- Generated from include/finance/models.py by `python -m include.finance.schema`; do not edit.

CREATE TABLE audit_log (
	id BIGSERIAL NOT NULL, 
	entity VARCHAR(40) NOT NULL, 
	entity_id BIGINT NOT NULL, 
	action VARCHAR(40) NOT NULL, 
	before JSON, 
	after JSON, 
	actor VARCHAR(250) NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_audit_log PRIMARY KEY (id)
);

CREATE INDEX ix_audit_log_entity_entity_id ON audit_log (entity, entity_id);

CREATE TABLE counter (
	name VARCHAR(80) NOT NULL, 
	value BIGINT NOT NULL, 
	CONSTRAINT pk_counter PRIMARY KEY (name)
);

CREATE TABLE delivery_report (
	id SERIAL NOT NULL, 
	batch VARCHAR(100) NOT NULL, 
	source VARCHAR(4) NOT NULL, 
	file_name VARCHAR(255) NOT NULL, 
	file_sha256 VARCHAR(64) NOT NULL, 
	encoding VARCHAR(20) NOT NULL, 
	lines INTEGER NOT NULL, 
	recipients INTEGER NOT NULL, 
	first_attempt_at TIMESTAMP WITH TIME ZONE, 
	last_attempt_at TIMESTAMP WITH TIME ZONE, 
	as_of TIMESTAMP WITH TIME ZONE NOT NULL, 
	analysed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	analysed_by VARCHAR(250) NOT NULL, 
	summary JSON NOT NULL, 
	CONSTRAINT pk_delivery_report PRIMARY KEY (id), 
	CONSTRAINT ck_delivery_report_source CHECK ((source = 'file' OR source = 'pom')), 
	CONSTRAINT uq_delivery_report_batch UNIQUE (batch)
);

CREATE TABLE end_user (
	id SERIAL NOT NULL, 
	eloi VARCHAR(40) NOT NULL, 
	first_name VARCHAR(100), 
	last_name VARCHAR(100) NOT NULL, 
	name_key VARCHAR(210) NOT NULL, 
	language VARCHAR(2) NOT NULL, 
	CONSTRAINT pk_end_user PRIMARY KEY (id), 
	CONSTRAINT uq_end_user_eloi UNIQUE (eloi)
);

CREATE INDEX ix_end_user_name_key ON end_user (name_key);

CREATE TABLE financial_system (
	id SERIAL NOT NULL, 
	code VARCHAR(20) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	merchant_name VARCHAR(200), 
	partial_payment_strategy VARCHAR(30) NOT NULL, 
	CONSTRAINT pk_financial_system PRIMARY KEY (id), 
	CONSTRAINT ck_financial_system_strategy CHECK ((partial_payment_strategy = 'first_transaction' OR partial_payment_strategy = 'matching_amount')), 
	CONSTRAINT uq_financial_system_code UNIQUE (code)
);

CREATE TABLE frequency (
	id SERIAL NOT NULL, 
	code VARCHAR(20) NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	unit VARCHAR(5) NOT NULL, 
	every INTEGER NOT NULL, 
	CONSTRAINT pk_frequency PRIMARY KEY (id), 
	CONSTRAINT ck_frequency_unit CHECK ((unit = 'day' OR unit = 'month' OR unit = 'year')), 
	CONSTRAINT ck_frequency_every CHECK (every >= 1), 
	CONSTRAINT uq_frequency_code UNIQUE (code)
);

CREATE TABLE payment_reference_type (
	id SERIAL NOT NULL, 
	code VARCHAR(40) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	reference_format VARCHAR(3), 
	reference_counter VARCHAR(60), 
	reference_prefix VARCHAR(9) NOT NULL, 
	invoice_counter VARCHAR(60), 
	invoice_prefix VARCHAR(20) NOT NULL, 
	mandate_reference_format VARCHAR(3), 
	mandate_reference_counter VARCHAR(60), 
	mandate_reference_prefix VARCHAR(9) NOT NULL, 
	access_read VARCHAR(60), 
	access_write VARCHAR(60), 
	access_admin VARCHAR(60), 
	print_state VARCHAR(60), 
	direct_print BOOLEAN NOT NULL, 
	address_types VARCHAR(200), 
	lifetime_seconds BIGINT, 
	default_sequence_type VARCHAR(4), 
	transaction_cost_code VARCHAR(40), 
	allowed_online BOOLEAN NOT NULL, 
	pom_account VARCHAR(60) NOT NULL, 
	pom_auto_cancel BOOLEAN NOT NULL, 
	CONSTRAINT pk_payment_reference_type PRIMARY KEY (id), 
	CONSTRAINT ck_payment_reference_type_ref_format CHECK (reference_format IS NULL OR (reference_format = 'OGM' OR reference_format = 'RF')), 
	CONSTRAINT ck_payment_reference_type_mandate_ref_format CHECK (mandate_reference_format IS NULL OR (mandate_reference_format = 'OGM' OR mandate_reference_format = 'RF')), 
	CONSTRAINT ck_payment_reference_type_sequence_type CHECK (default_sequence_type IS NULL OR (default_sequence_type = 'FRST' OR default_sequence_type = 'RCUR' OR default_sequence_type = 'FNAL' OR default_sequence_type = 'OOFF')), 
	CONSTRAINT ck_payment_reference_type_lifetime CHECK (lifetime_seconds IS NULL OR lifetime_seconds > 0), 
	CONSTRAINT uq_payment_reference_type_code UNIQUE (code)
);

CREATE TABLE pom_event (
	id SERIAL NOT NULL, 
	account VARCHAR(60) NOT NULL, 
	event_id VARCHAR(100) NOT NULL, 
	event_type VARCHAR(60) NOT NULL, 
	pom_id VARCHAR(60), 
	received_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	outcome VARCHAR(40) NOT NULL, 
	body JSON NOT NULL, 
	CONSTRAINT pk_pom_event PRIMARY KEY (id), 
	CONSTRAINT uq_pom_event_account_event_id UNIQUE (account, event_id)
);

CREATE TABLE address (
	id SERIAL NOT NULL, 
	end_user_id INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	address_type VARCHAR(30) NOT NULL, 
	street VARCHAR(140), 
	house_number VARCHAR(16), 
	postal_code VARCHAR(16), 
	city VARCHAR(140), 
	country VARCHAR(2) NOT NULL, 
	copy_per_address BOOLEAN NOT NULL, 
	CONSTRAINT pk_address PRIMARY KEY (id), 
	CONSTRAINT uq_address_end_user_id_position UNIQUE (end_user_id, position), 
	CONSTRAINT fk_address_end_user_id_end_user FOREIGN KEY(end_user_id) REFERENCES end_user (id)
);

CREATE INDEX ix_address_end_user_id ON address (end_user_id);

CREATE TABLE bank_hub (
	id SERIAL NOT NULL, 
	code VARCHAR(40) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	financial_system_id INTEGER NOT NULL, 
	account_number_type VARCHAR(10) NOT NULL, 
	bank_id_type VARCHAR(10) NOT NULL, 
	creditor_iban VARCHAR(34), 
	creditor_bic VARCHAR(11), 
	cash_register VARCHAR(40), 
	currency VARCHAR(3) NOT NULL, 
	keep_days INTEGER NOT NULL, 
	initiator_name VARCHAR(140), 
	initiator_id VARCHAR(35), 
	creditor_name VARCHAR(140), 
	creditor_street VARCHAR(70), 
	creditor_house_number VARCHAR(16), 
	creditor_postal_code VARCHAR(16), 
	creditor_city VARCHAR(35), 
	creditor_country VARCHAR(2), 
	creditor_id VARCHAR(35), 
	export_format VARCHAR(10), 
	proposal_generators VARCHAR(200), 
	pain008_version VARCHAR(20) NOT NULL, 
	rcur_only BOOLEAN NOT NULL, 
	lead_days INTEGER NOT NULL, 
	batch_booking BOOLEAN NOT NULL, 
	local_instrument VARCHAR(4) NOT NULL, 
	fatal_return_reasons VARCHAR(200) NOT NULL, 
	approval_required BOOLEAN DEFAULT true NOT NULL, 
	four_eyes BOOLEAN DEFAULT true NOT NULL, 
	CONSTRAINT pk_bank_hub PRIMARY KEY (id), 
	CONSTRAINT ck_bank_hub_format CHECK (export_format IS NULL OR (export_format = 'SEPA' OR export_format = 'SAFESEPA' OR export_format = 'CSV' OR export_format = 'BXML')), 
	CONSTRAINT ck_bank_hub_pain008_version CHECK ((pain008_version = 'pain.008.001.02' OR pain008_version = 'pain.008.001.08')), 
	CONSTRAINT ck_bank_hub_local_instrument CHECK ((local_instrument = 'CORE' OR local_instrument = 'B2B')), 
	CONSTRAINT ck_bank_hub_lead_days CHECK (lead_days >= 0), 
	CONSTRAINT uq_bank_hub_code UNIQUE (code), 
	CONSTRAINT fk_bank_hub_financial_system_id_financial_system FOREIGN KEY(financial_system_id) REFERENCES financial_system (id)
);

CREATE TABLE delivery_report_line (
	id BIGSERIAL NOT NULL, 
	report_id INTEGER NOT NULL, 
	line_no INTEGER NOT NULL, 
	document_id VARCHAR(100) NOT NULL, 
	recipient_name VARCHAR(200), 
	email VARCHAR(254) NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	message_kind VARCHAR(20) NOT NULL, 
	description TEXT NOT NULL, 
	attempted_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_delivery_report_line PRIMARY KEY (id), 
	CONSTRAINT ck_delivery_report_line_message_kind CHECK ((message_kind = 'delivered' OR message_kind = 'temporary' OR message_kind = 'mailbox_full' OR message_kind = 'rejected_blacklisted' OR message_kind = 'blacklisted' OR message_kind = 'unsubscribed' OR message_kind = 'document_id_used' OR message_kind = 'unknown')), 
	CONSTRAINT uq_delivery_report_line_report_id_line_no UNIQUE (report_id, line_no), 
	CONSTRAINT fk_delivery_report_line_report_id_delivery_report FOREIGN KEY(report_id) REFERENCES delivery_report (id)
);

CREATE TABLE sales_journal (
	id SERIAL NOT NULL, 
	code VARCHAR(40) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	copy_per_address BOOLEAN NOT NULL, 
	payment_reference_type_id INTEGER, 
	CONSTRAINT pk_sales_journal PRIMARY KEY (id), 
	CONSTRAINT uq_sales_journal_code UNIQUE (code), 
	CONSTRAINT uq_sales_journal_payment_reference_type_id UNIQUE (payment_reference_type_id), 
	CONSTRAINT fk_sales_journal_payment_reference_type_id_payment_refe_1649 FOREIGN KEY(payment_reference_type_id) REFERENCES payment_reference_type (id)
);

CREATE TABLE transaction_cost (
	id SERIAL NOT NULL, 
	financial_system_id INTEGER NOT NULL, 
	transaction_code VARCHAR(40) NOT NULL, 
	amount NUMERIC(12, 2) NOT NULL, 
	description VARCHAR(200), 
	CONSTRAINT pk_transaction_cost PRIMARY KEY (id), 
	CONSTRAINT uq_transaction_cost_financial_system_id_transaction_code UNIQUE (financial_system_id, transaction_code), 
	CONSTRAINT ck_transaction_cost_amount_positive CHECK (amount > 0), 
	CONSTRAINT fk_transaction_cost_financial_system_id_financial_system FOREIGN KEY(financial_system_id) REFERENCES financial_system (id)
);

CREATE TABLE bank_statement (
	id SERIAL NOT NULL, 
	identity VARCHAR(250) NOT NULL, 
	kind VARCHAR(8) NOT NULL, 
	version VARCHAR(20) NOT NULL, 
	account VARCHAR(40) NOT NULL, 
	statement_id VARCHAR(100) NOT NULL, 
	electronic_seq BIGINT, 
	legal_seq BIGINT, 
	message_id VARCHAR(100), 
	created_on_bank TIMESTAMP WITH TIME ZONE, 
	from_date DATE, 
	to_date DATE, 
	copy_indicator VARCHAR(4), 
	currency VARCHAR(3), 
	opening_balance NUMERIC(12, 2), 
	closing_balance NUMERIC(12, 2), 
	hub_id INTEGER, 
	file_name VARCHAR(255) NOT NULL, 
	file_sha256 VARCHAR(64) NOT NULL, 
	entries INTEGER NOT NULL, 
	new_lines INTEGER NOT NULL, 
	imported_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	imported_by VARCHAR(250) NOT NULL, 
	CONSTRAINT pk_bank_statement PRIMARY KEY (id), 
	CONSTRAINT ck_bank_statement_kind CHECK ((kind = 'camt.053' OR kind = 'camt.054')), 
	CONSTRAINT uq_bank_statement_identity UNIQUE (identity), 
	CONSTRAINT fk_bank_statement_hub_id_bank_hub FOREIGN KEY(hub_id) REFERENCES bank_hub (id)
);

CREATE INDEX ix_bank_statement_account_electronic_seq ON bank_statement (account, electronic_seq);

CREATE TABLE collection_run (
	id SERIAL NOT NULL, 
	loi VARCHAR(40) NOT NULL, 
	hub_id INTEGER NOT NULL, 
	collection_date DATE NOT NULL, 
	run_date DATE NOT NULL, 
	status VARCHAR(10) NOT NULL, 
	export_format VARCHAR(10), 
	file_path VARCHAR(500), 
	file_sha256 VARCHAR(64), 
	transaction_count INTEGER NOT NULL, 
	total_amount NUMERIC(12, 2) NOT NULL, 
	error TEXT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	created_by VARCHAR(250), 
	exported_at TIMESTAMP WITH TIME ZONE, 
	CONSTRAINT pk_collection_run PRIMARY KEY (id), 
	CONSTRAINT ck_collection_run_status CHECK ((status = 'ready' OR status = 'exported' OR status = 'failed' OR status = 'confirmed' OR status = 'deleted')), 
	CONSTRAINT uq_collection_run_loi UNIQUE (loi), 
	CONSTRAINT fk_collection_run_hub_id_bank_hub FOREIGN KEY(hub_id) REFERENCES bank_hub (id)
);

CREATE INDEX ix_collection_run_hub_id_collection_date_status ON collection_run (hub_id, collection_date, status);

CREATE TABLE contact (
	id SERIAL NOT NULL, 
	end_user_id INTEGER NOT NULL, 
	address_id INTEGER, 
	kind VARCHAR(10) NOT NULL, 
	value VARCHAR(254) NOT NULL, 
	email_recipient BOOLEAN NOT NULL, 
	CONSTRAINT pk_contact PRIMARY KEY (id), 
	CONSTRAINT ck_contact_kind CHECK ((kind = 'email' OR kind = 'phone')), 
	CONSTRAINT fk_contact_end_user_id_end_user FOREIGN KEY(end_user_id) REFERENCES end_user (id), 
	CONSTRAINT fk_contact_address_id_address FOREIGN KEY(address_id) REFERENCES address (id)
);

CREATE INDEX ix_contact_end_user_id ON contact (end_user_id);

CREATE TABLE mandate (
	id SERIAL NOT NULL, 
	loi VARCHAR(40) NOT NULL, 
	financial_system_id INTEGER NOT NULL, 
	reference VARCHAR(35) NOT NULL, 
	active BOOLEAN NOT NULL, 
	information TEXT, 
	type_id INTEGER, 
	signature_date DATE, 
	first_collection_date DATE, 
	last_collection_date DATE, 
	end_date DATE, 
	frequency_id INTEGER, 
	hub_id INTEGER, 
	end_user_id INTEGER NOT NULL, 
	debtor_id INTEGER, 
	debtor_iban VARCHAR(34), 
	debtor_bic VARCHAR(11), 
	created_at TIMESTAMP WITH TIME ZONE, 
	blocked_reason VARCHAR(200), 
	CONSTRAINT pk_mandate PRIMARY KEY (id), 
	CONSTRAINT uq_mandate_financial_system_id_reference UNIQUE (financial_system_id, reference), 
	CONSTRAINT uq_mandate_loi UNIQUE (loi), 
	CONSTRAINT fk_mandate_financial_system_id_financial_system FOREIGN KEY(financial_system_id) REFERENCES financial_system (id), 
	CONSTRAINT fk_mandate_type_id_payment_reference_type FOREIGN KEY(type_id) REFERENCES payment_reference_type (id), 
	CONSTRAINT fk_mandate_frequency_id_frequency FOREIGN KEY(frequency_id) REFERENCES frequency (id), 
	CONSTRAINT fk_mandate_hub_id_bank_hub FOREIGN KEY(hub_id) REFERENCES bank_hub (id), 
	CONSTRAINT fk_mandate_end_user_id_end_user FOREIGN KEY(end_user_id) REFERENCES end_user (id), 
	CONSTRAINT fk_mandate_debtor_id_end_user FOREIGN KEY(debtor_id) REFERENCES end_user (id)
);

CREATE INDEX ix_mandate_debtor_iban ON mandate (debtor_iban);

CREATE INDEX ix_mandate_end_user_id ON mandate (end_user_id);

CREATE TABLE bank_file_approval (
	id SERIAL NOT NULL, 
	run_id INTEGER NOT NULL, 
	attempt INTEGER NOT NULL, 
	status VARCHAR(10) NOT NULL, 
	export_format VARCHAR(10) NOT NULL, 
	staged_path VARCHAR(500) NOT NULL, 
	file_sha256 VARCHAR(64) NOT NULL, 
	transaction_count INTEGER NOT NULL, 
	total_amount NUMERIC(12, 2) NOT NULL, 
	summary JSON NOT NULL, 
	four_eyes BOOLEAN NOT NULL, 
	requested_by VARCHAR(250), 
	requested_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	airflow_task VARCHAR(500), 
	decided_by VARCHAR(250), 
	decided_at TIMESTAMP WITH TIME ZONE, 
	reason TEXT, 
	CONSTRAINT pk_bank_file_approval PRIMARY KEY (id), 
	CONSTRAINT uq_bank_file_approval_run_id_attempt UNIQUE (run_id, attempt), 
	CONSTRAINT ck_bank_file_approval_status CHECK ((status = 'waiting' OR status = 'approved' OR status = 'rejected')), 
	CONSTRAINT ck_bank_file_approval_decided CHECK ((status = 'waiting') = (decided_at IS NULL)), 
	CONSTRAINT fk_bank_file_approval_run_id_collection_run FOREIGN KEY(run_id) REFERENCES collection_run (id)
);

CREATE UNIQUE INDEX ux_bank_file_approval_waiting ON bank_file_approval (run_id) WHERE status = 'waiting';

CREATE TABLE mandate_transaction_code (
	id SERIAL NOT NULL, 
	mandate_id INTEGER NOT NULL, 
	pattern VARCHAR(40) NOT NULL, 
	CONSTRAINT pk_mandate_transaction_code PRIMARY KEY (id), 
	CONSTRAINT uq_mandate_transaction_code_mandate_id_pattern UNIQUE (mandate_id, pattern), 
	CONSTRAINT fk_mandate_transaction_code_mandate_id_mandate FOREIGN KEY(mandate_id) REFERENCES mandate (id)
);

CREATE INDEX ix_mandate_transaction_code_mandate_id ON mandate_transaction_code (mandate_id);

CREATE TABLE payment_reference (
	id SERIAL NOT NULL, 
	loi VARCHAR(40) NOT NULL, 
	financial_system_id INTEGER NOT NULL, 
	type_id INTEGER NOT NULL, 
	end_user_id INTEGER NOT NULL, 
	mandate_id INTEGER, 
	hub_id INTEGER, 
	status VARCHAR(10) NOT NULL, 
	amount NUMERIC(12, 2) NOT NULL, 
	open_amount NUMERIC(12, 2) NOT NULL, 
	reference_number VARCHAR(25), 
	invoice_number VARCHAR(40), 
	due_date DATE, 
	description TEXT, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	sealed_at TIMESTAMP WITH TIME ZONE, 
	CONSTRAINT pk_payment_reference PRIMARY KEY (id), 
	CONSTRAINT ck_payment_reference_status CHECK ((status = 'draft' OR status = 'sealed' OR status = 'paid' OR status = 'deleted' OR status = 'expired')), 
	CONSTRAINT ck_payment_reference_open_amount_range CHECK (open_amount >= 0 AND open_amount <= amount), 
	CONSTRAINT uq_payment_reference_financial_system_id_reference_number UNIQUE (financial_system_id, reference_number), 
	CONSTRAINT uq_payment_reference_financial_system_id_invoice_number UNIQUE (financial_system_id, invoice_number), 
	CONSTRAINT uq_payment_reference_loi UNIQUE (loi), 
	CONSTRAINT fk_payment_reference_financial_system_id_financial_system FOREIGN KEY(financial_system_id) REFERENCES financial_system (id), 
	CONSTRAINT fk_payment_reference_type_id_payment_reference_type FOREIGN KEY(type_id) REFERENCES payment_reference_type (id), 
	CONSTRAINT fk_payment_reference_end_user_id_end_user FOREIGN KEY(end_user_id) REFERENCES end_user (id), 
	CONSTRAINT fk_payment_reference_mandate_id_mandate FOREIGN KEY(mandate_id) REFERENCES mandate (id), 
	CONSTRAINT fk_payment_reference_hub_id_bank_hub FOREIGN KEY(hub_id) REFERENCES bank_hub (id)
);

CREATE INDEX ix_payment_reference_end_user_id_financial_system_id ON payment_reference (end_user_id, financial_system_id);

CREATE INDEX ix_payment_reference_financial_system_id_open_amount ON payment_reference (financial_system_id, open_amount);

CREATE TABLE collection (
	id SERIAL NOT NULL, 
	run_id INTEGER NOT NULL, 
	mandate_id INTEGER NOT NULL, 
	payment_reference_id INTEGER NOT NULL, 
	sequence_type VARCHAR(4) NOT NULL, 
	due_date DATE NOT NULL, 
	amount NUMERIC(12, 2) NOT NULL, 
	end_to_end_id VARCHAR(35) NOT NULL, 
	status VARCHAR(10) NOT NULL, 
	return_reason VARCHAR(10), 
	mandate_reference VARCHAR(35), 
	debtor_iban VARCHAR(34), 
	debtor_bic VARCHAR(11), 
	creditor_id VARCHAR(35), 
	original_mandate_reference VARCHAR(35), 
	original_creditor_id VARCHAR(35), 
	original_debtor_iban VARCHAR(34), 
	debtor_agent_changed BOOLEAN DEFAULT false NOT NULL, 
	CONSTRAINT pk_collection PRIMARY KEY (id), 
	CONSTRAINT ck_collection_sequence_type CHECK ((sequence_type = 'FRST' OR sequence_type = 'RCUR' OR sequence_type = 'FNAL' OR sequence_type = 'OOFF')), 
	CONSTRAINT ck_collection_status CHECK ((status = 'pending' OR status = 'exported' OR status = 'paid' OR status = 'returned' OR status = 'cancelled')), 
	CONSTRAINT ck_collection_amount_positive CHECK (amount > 0), 
	CONSTRAINT fk_collection_run_id_collection_run FOREIGN KEY(run_id) REFERENCES collection_run (id), 
	CONSTRAINT fk_collection_mandate_id_mandate FOREIGN KEY(mandate_id) REFERENCES mandate (id), 
	CONSTRAINT uq_collection_payment_reference_id UNIQUE (payment_reference_id), 
	CONSTRAINT fk_collection_payment_reference_id_payment_reference FOREIGN KEY(payment_reference_id) REFERENCES payment_reference (id), 
	CONSTRAINT uq_collection_end_to_end_id UNIQUE (end_to_end_id)
);

CREATE INDEX ix_collection_mandate_id ON collection (mandate_id);

CREATE INDEX ix_collection_run_id ON collection (run_id);

CREATE UNIQUE INDEX uq_collection_live_mandate_due_date ON collection (mandate_id, due_date) WHERE status NOT IN ('returned', 'cancelled');

CREATE TABLE debt_line (
	id SERIAL NOT NULL, 
	financial_system_id INTEGER NOT NULL, 
	end_user_id INTEGER NOT NULL, 
	transaction_code VARCHAR(40) NOT NULL, 
	description VARCHAR(200), 
	amount NUMERIC(12, 2) NOT NULL, 
	open_amount NUMERIC(12, 2) NOT NULL, 
	created_on DATE NOT NULL, 
	payment_reference_id INTEGER, 
	cost_of_reference_id INTEGER, 
	reversed_at TIMESTAMP WITH TIME ZONE, 
	CONSTRAINT pk_debt_line PRIMARY KEY (id), 
	CONSTRAINT ck_debt_line_amount_positive CHECK (amount > 0), 
	CONSTRAINT ck_debt_line_open_amount_range CHECK (open_amount >= 0 AND open_amount <= amount), 
	CONSTRAINT fk_debt_line_financial_system_id_financial_system FOREIGN KEY(financial_system_id) REFERENCES financial_system (id), 
	CONSTRAINT fk_debt_line_end_user_id_end_user FOREIGN KEY(end_user_id) REFERENCES end_user (id), 
	CONSTRAINT fk_debt_line_payment_reference_id_payment_reference FOREIGN KEY(payment_reference_id) REFERENCES payment_reference (id), 
	CONSTRAINT uq_debt_line_cost_of_reference_id UNIQUE (cost_of_reference_id), 
	CONSTRAINT fk_debt_line_cost_of_reference_id_payment_reference FOREIGN KEY(cost_of_reference_id) REFERENCES payment_reference (id)
);

CREATE INDEX ix_debt_line_end_user_id_financial_system_id_payment_re_1aa0 ON debt_line (end_user_id, financial_system_id, payment_reference_id);

CREATE TABLE pom_payment_request (
	id SERIAL NOT NULL, 
	payment_reference_id INTEGER NOT NULL, 
	account VARCHAR(60) NOT NULL, 
	pom_id VARCHAR(60), 
	idempotency_key VARCHAR(100) NOT NULL, 
	amount NUMERIC(12, 2) NOT NULL, 
	communication VARCHAR(25) NOT NULL, 
	due_date DATE, 
	status VARCHAR(10) NOT NULL, 
	qr_id VARCHAR(60), 
	qr_payload TEXT, 
	pay_url TEXT, 
	qr_svg TEXT, 
	qr_created_at TIMESTAMP WITH TIME ZONE, 
	qr_expires_at TIMESTAMP WITH TIME ZONE, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	cancelled_reason VARCHAR(200), 
	paid_amount NUMERIC(12, 2), 
	paid_at TIMESTAMP WITH TIME ZONE, 
	channel VARCHAR(20), 
	CONSTRAINT pk_pom_payment_request PRIMARY KEY (id), 
	CONSTRAINT ck_pom_payment_request_status CHECK ((status = 'creating' OR status = 'open' OR status = 'paid' OR status = 'cancelled' OR status = 'expired')), 
	CONSTRAINT ck_pom_payment_request_amount_positive CHECK (amount > 0), 
	CONSTRAINT uq_pom_payment_request_account_pom_id UNIQUE (account, pom_id), 
	CONSTRAINT fk_pom_payment_request_payment_reference_id_payment_reference FOREIGN KEY(payment_reference_id) REFERENCES payment_reference (id), 
	CONSTRAINT uq_pom_payment_request_idempotency_key UNIQUE (idempotency_key)
);

CREATE INDEX ix_pom_payment_request_payment_reference_id ON pom_payment_request (payment_reference_id);

CREATE INDEX ix_pom_payment_request_status_account ON pom_payment_request (status, account);

CREATE UNIQUE INDEX uq_pom_payment_request_live_reference ON pom_payment_request (payment_reference_id) WHERE status IN ('creating', 'open');

CREATE TABLE bank_entry (
	id SERIAL NOT NULL, 
	statement_id INTEGER NOT NULL, 
	account VARCHAR(40) NOT NULL, 
	entry_key VARCHAR(200) NOT NULL, 
	entry_index INTEGER NOT NULL, 
	tx_index INTEGER NOT NULL, 
	amount NUMERIC(12, 2) NOT NULL, 
	credit BOOLEAN NOT NULL, 
	reversal BOOLEAN NOT NULL, 
	status VARCHAR(4) NOT NULL, 
	booking_date DATE, 
	value_date DATE, 
	entry_ref VARCHAR(100), 
	account_servicer_ref VARCHAR(100), 
	end_to_end_id VARCHAR(100), 
	bank_tx_code VARCHAR(60), 
	counterparty_name VARCHAR(140), 
	counterparty_iban VARCHAR(40), 
	counterparty_bic VARCHAR(11), 
	reference VARCHAR(40), 
	remittance TEXT, 
	return_reason VARCHAR(10), 
	outcome VARCHAR(20) NOT NULL, 
	payment_reference_id INTEGER, 
	collection_id INTEGER, 
	booked_amount NUMERIC(12, 2), 
	CONSTRAINT pk_bank_entry PRIMARY KEY (id), 
	CONSTRAINT uq_bank_entry_account_entry_key UNIQUE (account, entry_key), 
	CONSTRAINT ck_bank_entry_outcome CHECK ((outcome = 'paid' OR outcome = 'partial' OR outcome = 'overpaid' OR outcome = 'closed_reference' OR outcome = 'unmatched' OR outcome = 'returned' OR outcome = 'unknown_return' OR outcome = 'unsplit' OR outcome = 'not_booked' OR outcome = 'other_debit' OR outcome = 'unknown_account')), 
	CONSTRAINT ck_bank_entry_amount_positive CHECK (amount >= 0), 
	CONSTRAINT fk_bank_entry_statement_id_bank_statement FOREIGN KEY(statement_id) REFERENCES bank_statement (id), 
	CONSTRAINT fk_bank_entry_payment_reference_id_payment_reference FOREIGN KEY(payment_reference_id) REFERENCES payment_reference (id), 
	CONSTRAINT fk_bank_entry_collection_id_collection FOREIGN KEY(collection_id) REFERENCES collection (id)
);

CREATE INDEX ix_bank_entry_counterparty_iban ON bank_entry (counterparty_iban);

CREATE INDEX ix_bank_entry_payment_reference_id ON bank_entry (payment_reference_id);

CREATE INDEX ix_bank_entry_statement_id ON bank_entry (statement_id);

CREATE TABLE invoice (
	id SERIAL NOT NULL, 
	payment_reference_id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	document_id VARCHAR(100) NOT NULL, 
	template VARCHAR(120) NOT NULL, 
	language VARCHAR(2) NOT NULL, 
	channel VARCHAR(5) NOT NULL, 
	postal_address_id INTEGER, 
	amount NUMERIC(12, 2) NOT NULL, 
	pom_payment_request_id INTEGER, 
	file_path VARCHAR(500) NOT NULL, 
	sha256 VARCHAR(64) NOT NULL, 
	pages INTEGER NOT NULL, 
	print_day DATE NOT NULL, 
	made_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	made_by VARCHAR(250) NOT NULL, 
	withdrawn_at TIMESTAMP WITH TIME ZONE, 
	withdrawn_reason VARCHAR(200), 
	CONSTRAINT pk_invoice PRIMARY KEY (id), 
	CONSTRAINT ck_invoice_channel CHECK ((channel = 'email' OR channel = 'paper' OR channel = 'both' OR channel = 'none')), 
	CONSTRAINT uq_invoice_payment_reference_id_version UNIQUE (payment_reference_id, version), 
	CONSTRAINT fk_invoice_payment_reference_id_payment_reference FOREIGN KEY(payment_reference_id) REFERENCES payment_reference (id), 
	CONSTRAINT uq_invoice_document_id UNIQUE (document_id), 
	CONSTRAINT fk_invoice_pom_payment_request_id_pom_payment_request FOREIGN KEY(pom_payment_request_id) REFERENCES pom_payment_request (id)
);

CREATE INDEX ix_invoice_payment_reference_id ON invoice (payment_reference_id);

CREATE INDEX ix_invoice_print_day ON invoice (print_day);

CREATE UNIQUE INDEX uq_invoice_current_reference ON invoice (payment_reference_id) WHERE withdrawn_at IS NULL;

CREATE TABLE payment_reference_line (
	id SERIAL NOT NULL, 
	payment_reference_id INTEGER NOT NULL, 
	debt_line_id INTEGER NOT NULL, 
	transaction_code VARCHAR(40) NOT NULL, 
	amount NUMERIC(12, 2) NOT NULL, 
	CONSTRAINT pk_payment_reference_line PRIMARY KEY (id), 
	CONSTRAINT uq_payment_reference_line_payment_reference_id_debt_line_id UNIQUE (payment_reference_id, debt_line_id), 
	CONSTRAINT fk_payment_reference_line_payment_reference_id_payment__8a05 FOREIGN KEY(payment_reference_id) REFERENCES payment_reference (id), 
	CONSTRAINT fk_payment_reference_line_debt_line_id_debt_line FOREIGN KEY(debt_line_id) REFERENCES debt_line (id)
);

CREATE INDEX ix_payment_reference_line_debt_line_id ON payment_reference_line (debt_line_id);

CREATE TABLE control_list_item (
	id SERIAL NOT NULL, 
	statement_id INTEGER, 
	bank_entry_id INTEGER, 
	kind VARCHAR(30) NOT NULL, 
	reason TEXT NOT NULL, 
	action TEXT NOT NULL, 
	amount NUMERIC(12, 2), 
	details JSON, 
	source VARCHAR(20) DEFAULT 'bank_statement' NOT NULL, 
	pom_event_id INTEGER, 
	created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL, 
	resolved_at TIMESTAMP WITH TIME ZONE, 
	resolved_by VARCHAR(250), 
	resolution VARCHAR(10), 
	resolution_note TEXT, 
	resolution_payment_reference_id INTEGER, 
	CONSTRAINT pk_control_list_item PRIMARY KEY (id), 
	CONSTRAINT ck_control_list_item_source CHECK ((source = 'bank_statement' OR source = 'pom')), 
	CONSTRAINT ck_control_list_item_statement CHECK (statement_id IS NOT NULL OR source <> 'bank_statement'), 
	CONSTRAINT ck_control_list_item_resolution CHECK (resolution IS NULL OR (resolution = 'booked' OR resolution = 'handled')), 
	CONSTRAINT ck_control_list_item_resolved CHECK ((resolved_at IS NULL AND resolution IS NULL) OR (resolved_at IS NOT NULL AND resolution IS NOT NULL AND resolved_by IS NOT NULL)), 
	CONSTRAINT fk_control_list_item_statement_id_bank_statement FOREIGN KEY(statement_id) REFERENCES bank_statement (id), 
	CONSTRAINT fk_control_list_item_bank_entry_id_bank_entry FOREIGN KEY(bank_entry_id) REFERENCES bank_entry (id), 
	CONSTRAINT fk_control_list_item_pom_event_id_pom_event FOREIGN KEY(pom_event_id) REFERENCES pom_event (id), 
	CONSTRAINT fk_control_list_item_resolution_payment_reference_id_pa_42fc FOREIGN KEY(resolution_payment_reference_id) REFERENCES payment_reference (id)
);

CREATE INDEX ix_control_list_item_open ON control_list_item (created_at, id) WHERE resolved_at IS NULL;

CREATE INDEX ix_control_list_item_statement_id ON control_list_item (statement_id);

CREATE TABLE payment (
	id SERIAL NOT NULL, 
	payment_reference_id INTEGER NOT NULL, 
	amount NUMERIC(12, 2) NOT NULL, 
	source VARCHAR(20) NOT NULL, 
	bank_entry_id INTEGER, 
	reverses_payment_id INTEGER, 
	booked_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	booked_by VARCHAR(250) NOT NULL, 
	note VARCHAR(250), 
	pom_payment_request_id INTEGER, 
	CONSTRAINT pk_payment PRIMARY KEY (id), 
	CONSTRAINT ck_payment_source CHECK ((source = 'bank_statement' OR source = 'collection_confirm' OR source = 'pom' OR source = 'manual')), 
	CONSTRAINT ck_payment_amount_not_zero CHECK (amount <> 0), 
	CONSTRAINT uq_payment_bank_entry_id_payment_reference_id UNIQUE (bank_entry_id, payment_reference_id), 
	CONSTRAINT fk_payment_payment_reference_id_payment_reference FOREIGN KEY(payment_reference_id) REFERENCES payment_reference (id), 
	CONSTRAINT fk_payment_bank_entry_id_bank_entry FOREIGN KEY(bank_entry_id) REFERENCES bank_entry (id), 
	CONSTRAINT uq_payment_reverses_payment_id UNIQUE (reverses_payment_id), 
	CONSTRAINT fk_payment_reverses_payment_id_payment FOREIGN KEY(reverses_payment_id) REFERENCES payment (id), 
	CONSTRAINT fk_payment_pom_payment_request_id_pom_payment_request FOREIGN KEY(pom_payment_request_id) REFERENCES pom_payment_request (id)
);

CREATE INDEX ix_payment_bank_entry_id ON payment (bank_entry_id);

CREATE INDEX ix_payment_payment_reference_id ON payment (payment_reference_id);

CREATE UNIQUE INDEX uq_payment_pom_booked_once ON payment (pom_payment_request_id) WHERE amount > 0;

CREATE TABLE sent_document (
	id SERIAL NOT NULL, 
	batch VARCHAR(100) NOT NULL, 
	document_id VARCHAR(100) NOT NULL, 
	payment_reference_id INTEGER, 
	end_user_id INTEGER NOT NULL, 
	sales_journal_id INTEGER, 
	sent_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	invoice_id INTEGER, 
	pdf_sha256 VARCHAR(64), 
	recipients JSON, 
	accepted_at TIMESTAMP WITH TIME ZONE, 
	CONSTRAINT pk_sent_document PRIMARY KEY (id), 
	CONSTRAINT uq_sent_document_batch_document_id UNIQUE (batch, document_id), 
	CONSTRAINT fk_sent_document_payment_reference_id_payment_reference FOREIGN KEY(payment_reference_id) REFERENCES payment_reference (id), 
	CONSTRAINT fk_sent_document_end_user_id_end_user FOREIGN KEY(end_user_id) REFERENCES end_user (id), 
	CONSTRAINT fk_sent_document_sales_journal_id_sales_journal FOREIGN KEY(sales_journal_id) REFERENCES sales_journal (id), 
	CONSTRAINT uq_sent_document_invoice_id UNIQUE (invoice_id), 
	CONSTRAINT fk_sent_document_invoice_id_invoice FOREIGN KEY(invoice_id) REFERENCES invoice (id)
);

CREATE INDEX ix_sent_document_end_user_id ON sent_document (end_user_id);

CREATE INDEX ix_sent_document_payment_reference_id ON sent_document (payment_reference_id);

CREATE TABLE delivery_diagnosis (
	id BIGSERIAL NOT NULL, 
	report_id INTEGER NOT NULL, 
	sent_document_id INTEGER, 
	document_id VARCHAR(100) NOT NULL, 
	contact_id INTEGER, 
	address_id INTEGER, 
	email VARCHAR(254), 
	address_label VARCHAR(200), 
	diagnosis VARCHAR(40) NOT NULL, 
	action VARCHAR(20) NOT NULL, 
	detail TEXT, 
	note VARCHAR(250), 
	attempts INTEGER NOT NULL, 
	last_line_no INTEGER, 
	retry_until TIMESTAMP WITH TIME ZONE, 
	CONSTRAINT pk_delivery_diagnosis PRIMARY KEY (id), 
	CONSTRAINT ck_delivery_diagnosis_diagnosis CHECK ((diagnosis = 'not_attempted_email_recipient_off' OR diagnosis = 'not_attempted_copy_per_address_off' OR diagnosis = 'not_attempted_no_email_address' OR diagnosis = 'not_attempted_unexplained' OR diagnosis = 'delivered' OR diagnosis = 'retrying' OR diagnosis = 'given_up' OR diagnosis = 'rejected_blacklisted' OR diagnosis = 'blacklisted' OR diagnosis = 'unsubscribed' OR diagnosis = 'document_id_used' OR diagnosis = 'unknown')), 
	CONSTRAINT ck_delivery_diagnosis_action CHECK ((action = 'fix_customer_record' OR action = 'correct_address' OR action = 'send_another_way' OR action = 'contact_support' OR action = 'wait' OR action = 'none')), 
	CONSTRAINT fk_delivery_diagnosis_report_id_delivery_report FOREIGN KEY(report_id) REFERENCES delivery_report (id), 
	CONSTRAINT fk_delivery_diagnosis_sent_document_id_sent_document FOREIGN KEY(sent_document_id) REFERENCES sent_document (id)
);

CREATE INDEX ix_delivery_diagnosis_report_id_action ON delivery_diagnosis (report_id, action);

CREATE TABLE payment_allocation (
	id SERIAL NOT NULL, 
	payment_id INTEGER NOT NULL, 
	debt_line_id INTEGER NOT NULL, 
	amount NUMERIC(12, 2) NOT NULL, 
	CONSTRAINT pk_payment_allocation PRIMARY KEY (id), 
	CONSTRAINT fk_payment_allocation_payment_id_payment FOREIGN KEY(payment_id) REFERENCES payment (id), 
	CONSTRAINT fk_payment_allocation_debt_line_id_debt_line FOREIGN KEY(debt_line_id) REFERENCES debt_line (id)
);

CREATE INDEX ix_payment_allocation_debt_line_id ON payment_allocation (debt_line_id);

CREATE INDEX ix_payment_allocation_payment_id ON payment_allocation (payment_id);
