-- A notification reporting money in another currency than the yuan the ledger keeps is
-- recorded as `foreign_currency`, outside the ledger, and listed for the platform operator
-- with the notifications naming no intent we know (issue 21, item 1: every receipt visible).
alter table provider_callbacks drop constraint provider_callbacks_outcome_check;
alter table provider_callbacks add constraint provider_callbacks_outcome_check
    check (outcome in ('credited', 'duplicate', 'second_charge', 'overpaid', 'late',
                       'amount_mismatch', 'unknown_intent', 'foreign_currency'));
create index provider_callbacks_unbooked on provider_callbacks (received_at, id)
    where outcome in ('unknown_intent', 'foreign_currency');
