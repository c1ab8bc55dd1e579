"""boto3 against a Tributary relay, for test/relay/boto3.test.ts.

Run with Debian's /usr/bin/python3 (python3-boto3). Everything it needs comes from the environment:
  ENDPOINT      the relay's http:// endpoint
  KEY_ID        access key id to sign with
  SECRET        secret access key to sign with
  PLAN          JSON: {"stream": name, "put": {...} (one PutRecord), "puts": [...] (one PutRecords)},
                each record {"key", "data" (base64), "hash" (ExplicitHashKey, optional)}
  BAD_SECRET, UNKNOWN_KEY_ID   for `refusals`

`roundtrip` runs the Kinesis calls a boto3 user makes, `refusals` the calls that must fail. Either
prints one JSON object on stdout, which the TypeScript test asserts on; data is base64 throughout.
"""
import base64
import json
import os
import sys

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ['ENDPOINT']


def client(key_id, secret):
    # One attempt: a refusal must reach the test as it came, not after retries.
    return boto3.client(
        'kinesis', endpoint_url=ENDPOINT, region_name='us-east-1',
        aws_access_key_id=key_id, aws_secret_access_key=secret,
        config=Config(retries={'max_attempts': 1, 'mode': 'standard'}),
    )


def b64(data):
    return base64.b64encode(data).decode('ascii')


def error_of(call):
    """The ClientError a call raises, as {code, message, status}; None when it does not fail."""
    try:
        call()
    except ClientError as err:
        return {
            'code': err.response['Error'].get('Code'),
            'message': err.response['Error'].get('Message'),
            'status': err.response['ResponseMetadata'].get('HTTPStatusCode'),
            'exception': type(err).__name__,
            'text': str(err),
        }
    return None


def record_wire(kinesis):
    """Records the Content-Type and X-Amz-Target botocore sends (it speaks JSON 1.1 to Kinesis)."""
    seen = []

    def header(request, name):
        value = request.headers.get(name, b'')
        return value.decode() if isinstance(value, bytes) else value

    def before_send(request, **_):
        seen.append({'contentType': header(request, 'Content-Type'), 'target': header(request, 'X-Amz-Target')})
    kinesis.meta.events.register('before-send.kinesis.*', before_send)
    return seen


def read_shard(kinesis, stream, shard_id):
    """Every record of a shard from TRIM_HORIZON, until caught up (open shard) or closed (no next iterator)."""
    it = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType='TRIM_HORIZON')['ShardIterator']
    records = []
    calls = 0
    closed = False
    while True:
        calls += 1
        if calls > 100:
            raise RuntimeError(f'{shard_id}: still reading after 100 GetRecords calls')
        page = kinesis.get_records(ShardIterator=it, Limit=2)
        for r in page['Records']:
            records.append({
                'shardId': shard_id, 'key': r['PartitionKey'], 'data': b64(r['Data']),
                'seq': r['SequenceNumber'], 'arrival': r['ApproximateArrivalTimestamp'].isoformat(),
            })
        it = page.get('NextShardIterator')
        if it is None:
            closed = True
            break
        if not page['Records'] and page.get('MillisBehindLatest') == 0:
            break
    return {'records': records, 'closed': closed, 'calls': calls}


def roundtrip():
    plan = json.loads(os.environ['PLAN'])
    stream = plan['stream']
    kinesis = client(os.environ['KEY_ID'], os.environ['SECRET'])
    wire = record_wire(kinesis)
    out = {'versions': {'boto3': boto3.__version__, 'botocore': botocore.__version__}}

    kinesis.create_stream(StreamName=stream, ShardCount=2)
    kinesis.get_waiter('stream_exists').wait(StreamName=stream, WaiterConfig={'Delay': 1, 'MaxAttempts': 30})
    out['listStreams'] = kinesis.list_streams()['StreamNames']
    summary = kinesis.describe_stream_summary(StreamName=stream)['StreamDescriptionSummary']
    out['summary'] = {k: summary[k] for k in ('StreamName', 'StreamARN', 'StreamStatus', 'RetentionPeriodHours', 'OpenShardCount')}

    def to_entry(r):
        entry = {'PartitionKey': r['key'], 'Data': base64.b64decode(r['data'])}
        if 'hash' in r:
            entry['ExplicitHashKey'] = r['hash']
        return entry
    one = kinesis.put_record(StreamName=stream, **to_entry(plan['put']))
    out['putRecord'] = {'shardId': one['ShardId'], 'seq': one['SequenceNumber']}
    many = kinesis.put_records(StreamName=stream, Records=[to_entry(r) for r in plan['puts']])
    out['putRecords'] = {
        'failed': many['FailedRecordCount'],
        'records': [{'shardId': r.get('ShardId'), 'seq': r.get('SequenceNumber'), 'error': r.get('ErrorCode')} for r in many['Records']],
    }

    shards = kinesis.list_shards(StreamName=stream)['Shards']
    out['shards'] = [{'id': s['ShardId'], 'start': s['HashKeyRange']['StartingHashKey'], 'end': s['HashKeyRange']['EndingHashKey']} for s in shards]
    out['read'] = []
    for s in shards:
        out['read'] += read_shard(kinesis, stream, s['ShardId'])['records']

    kinesis.add_tags_to_stream(StreamName=stream, Tags={'env': 'test', 'owner': 'tributary'})
    out['tags'] = {t['Key']: t['Value'] for t in kinesis.list_tags_for_stream(StreamName=stream)['Tags']}

    kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=48)
    out['retentionAfter'] = kinesis.describe_stream_summary(StreamName=stream)['StreamDescriptionSummary']['RetentionPeriodHours']

    # Split the first shard at the middle of its range; the waiter waits out UPDATING.
    first = shards[0]
    middle = (int(first['HashKeyRange']['StartingHashKey']) + int(first['HashKeyRange']['EndingHashKey']) + 1) // 2
    kinesis.split_shard(StreamName=stream, ShardToSplit=first['ShardId'], NewStartingHashKey=str(middle))
    kinesis.get_waiter('stream_exists').wait(StreamName=stream, WaiterConfig={'Delay': 1, 'MaxAttempts': 30})
    after = kinesis.list_shards(StreamName=stream)['Shards']
    out['split'] = {
        'middle': str(middle),
        'shards': [{'id': s['ShardId'], 'parent': s.get('ParentShardId'), 'start': s['HashKeyRange']['StartingHashKey'],
                    'end': s['HashKeyRange']['EndingHashKey'], 'closed': 'EndingSequenceNumber' in s['SequenceNumberRange']} for s in after],
        'openShards': kinesis.describe_stream_summary(StreamName=stream)['StreamDescriptionSummary']['OpenShardCount'],
    }
    parent = read_shard(kinesis, stream, first['ShardId'])
    out['split']['parentRead'] = {'seqs': [r['seq'] for r in parent['records']], 'closed': parent['closed']}
    # A record hashed to 0 now lands in the lower child.
    child = kinesis.put_record(StreamName=stream, PartitionKey='after-split', ExplicitHashKey='0', Data=b'after split')
    out['split']['putAfter'] = {'shardId': child['ShardId'], 'seq': child['SequenceNumber']}

    out['missing'] = error_of(lambda: kinesis.describe_stream_summary(StreamName=stream + '-missing'))

    kinesis.delete_stream(StreamName=stream)
    kinesis.get_waiter('stream_not_exists').wait(StreamName=stream, WaiterConfig={'Delay': 1, 'MaxAttempts': 30})
    out['afterDelete'] = kinesis.list_streams()['StreamNames']
    out['wire'] = {'contentTypes': sorted({w['contentType'] for w in wire}), 'targets': sorted({w['target'] for w in wire})}
    return out


def refusals():
    key_id = os.environ['KEY_ID']
    good = client(key_id, os.environ['SECRET'])
    wrong_secret = client(key_id, os.environ['BAD_SECRET'])
    unknown_key = client(os.environ['UNKNOWN_KEY_ID'], os.environ['SECRET'])
    return {
        'wrongSecret': error_of(lambda: wrong_secret.list_streams()),
        'wrongSecretPut': error_of(lambda: wrong_secret.put_record(StreamName='anything', PartitionKey='k', Data=b'forged')),
        'unknownKey': error_of(lambda: unknown_key.list_streams()),
        'missing': error_of(lambda: good.describe_stream_summary(StreamName='no-such-stream')),
        'goodList': good.list_streams()['StreamNames'],
    }


if __name__ == '__main__':
    mode = sys.argv[1] if len(sys.argv) > 1 else 'roundtrip'
    result = {'roundtrip': roundtrip, 'refusals': refusals}[mode]()
    print(json.dumps(result))
