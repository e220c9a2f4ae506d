// Diesel table definitions, kept in step with `migrations/` by hand.

diesel::table! {
    regions (code) {
        code -> Text,
        parent_code -> Nullable<Text>,
        level -> Int2,
        kind -> Text,
        name -> Text,
        postal_code -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        phone -> Text,
        name -> Text,
        password_hash -> Text,
        is_platform_admin -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    villages (code) {
        code -> Text,
        name -> Text,
        idm_status -> Nullable<Text>,
        village_share_bps -> Int4,
        onboarded_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    networks (id) {
        id -> Uuid,
        name -> Text,
        network_fee_bps -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    network_villages (network_id, village_code) {
        network_id -> Uuid,
        village_code -> Text,
        joined_at -> Timestamptz,
    }
}

diesel::joinable!(villages -> regions (code));
diesel::joinable!(network_villages -> networks (network_id));
diesel::joinable!(network_villages -> villages (village_code));

diesel::allow_tables_to_appear_in_same_query!(regions, users, villages, networks, network_villages);
