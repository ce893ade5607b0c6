with

leads as (
    select * from {{ ref('int_leads_classified') }}
),

keywords as (
    select
        lower(trim(keyword)) as keyword,
        channel,
        priority
    from {{ ref('how_heard_keywords') }}
    where nullif(trim(keyword), '') is not null
),

no_answer_values as (
    select lower(trim(value)) as value
    from {{ ref('how_heard_no_answer_values') }}
    where nullif(trim(value), '') is not null
),

-- the keyword match runs once per distinct answer, not once per lead row
answers as (
    select distinct
        how_heard,
        lower(trim(coalesce(how_heard, ''))) as answer
    from leads
),

keyword_matches as (
    select
        answers.how_heard,
        keywords.channel,
        row_number() over (
            partition by answers.how_heard
            order by keywords.priority asc, length(keywords.keyword) desc, keywords.keyword
        ) as match_rank
    from answers
    inner join keywords
        on regexp_matches(answers.answer, '\b' || regexp_escape(keywords.keyword) || '\b')
),

answer_channels as (
    select
        answers.how_heard,
        case
            when answers.answer = '' or answers.answer in (select no_answer_values.value from no_answer_values)
                then 'no_answer'
            else coalesce(keyword_matches.channel, 'other')
        end as self_reported_channel
    from answers
    left join keyword_matches
        on answers.how_heard is not distinct from keyword_matches.how_heard
        and keyword_matches.match_rank = 1
),

leads_with_channel as (
    select
        cast(date_trunc('week', leads.lead_date) as date) as week_start,
        answer_channels.self_reported_channel,
        leads.traffic_class as tracked_traffic_class,
        leads.leads
    from leads
    left join answer_channels
        on leads.how_heard is not distinct from answer_channels.how_heard
),

weekly as (
    select
        week_start,
        self_reported_channel,
        tracked_traffic_class,
        sum(leads) as leads
    from leads_with_channel
    group by all
),

week_totals as (
    select
        week_start,
        sum(leads) as week_leads,
        sum(leads) filter (where self_reported_channel != 'no_answer') as answered_leads,
        sum(leads) filter (
            where self_reported_channel in (
                {%- for channel in var('word_of_mouth_channels') %}
                '{{ channel }}'{{ "," if not loop.last }}
                {%- endfor %}
            )
            and tracked_traffic_class in (
                {%- for class in var('dark_funnel_tracked_classes') %}
                '{{ class }}'{{ "," if not loop.last }}
                {%- endfor %}
            )
        ) as dark_funnel_leads
    from weekly
    group by week_start
),

final as (
    select
        weekly.week_start,
        strftime(weekly.week_start, '%G-W%V') as iso_week,
        weekly.self_reported_channel,
        weekly.tracked_traffic_class,
        cast(weekly.leads as double) as leads,
        case
            when week_totals.week_leads = 0 then cast(0 as double)
            else weekly.leads / week_totals.week_leads
        end as share_of_week,
        case
            when coalesce(week_totals.answered_leads, 0) = 0 then cast(null as double)
            else coalesce(week_totals.dark_funnel_leads, 0) / week_totals.answered_leads
        end as dark_funnel_share
    from weekly
    inner join week_totals
        on weekly.week_start = week_totals.week_start
)

select * from final
