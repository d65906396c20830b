-- The user's contact address, for the notices of events Didit sends without
-- a decision (Kyc Expired, Resubmitted): the notice activity reads it here
-- instead of carrying it through Temporal. It is the address of the newest
-- applied event that gave one, or of any event while none is known. The
-- retention purge and the erasure command blank it; '' means none.

-- +goose Up
ALTER TABLE verifications ADD COLUMN contact_email TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE verifications DROP COLUMN contact_email;
