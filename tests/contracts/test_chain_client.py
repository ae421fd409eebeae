"""The trio JSON-RPC client against anvil: reads, raw transactions, logs, code uploads."""

from __future__ import annotations

import os

import pytest
from chainkit import Net
from gexe.contracts import (
    EthClient,
    LogDecoder,
    RpcError,
    code_id,
    decode_code_upload,
    event_topic,
    topics_of,
)
from gexe.contracts.anvil import Anvil


async def test_reads_and_batch(anvil: Anvil, net: Net) -> None:
    async with EthClient(anvil.url) as eth:
        assert await eth.chain_id() == net.chain_id
        number = await eth.block_number()
        block = await eth.get_block(number)
        assert block is not None and int(block["number"], 16) == number
        assert await eth.get_balance(net.owner.address) > 0
        assert await eth.get_code(net.deployment.router) == bytes(
            net.w3.eth.get_code(net.deployment.router)
        )
        chain, latest = await eth.batch([("eth_chainId", []), ("eth_blockNumber", [])])
        assert int(chain, 16) == net.chain_id and int(latest, 16) >= number


async def test_send_raw_transaction_and_decode_logs(anvil: Anvil, net: Net) -> None:
    code = b"\x00asm" + os.urandom(40)
    cid = code_id(code)
    call = net.router.contract.functions.requestCodeValidation(cid, code)
    user = net.users[0]
    async with EthClient(anvil.url) as eth:
        tx = call.build_transaction(
            {
                "from": user.address,
                "nonce": await eth.nonce(user.address),
                "gas": 200_000,
                "gasPrice": await eth.gas_price(),
                "chainId": net.chain_id,
            }
        )
        tx_hash = await eth.send_raw_transaction(user.sign_transaction(tx).raw_transaction)
        receipt = await eth.wait_for_receipt(tx_hash, timeout=30)
        assert int(receipt["status"], 16) == 1
        block = int(receipt["blockNumber"], 16)
        logs = await eth.get_logs(
            from_block=block,
            to_block=block,
            address=net.deployment.router,
            topics=[topics_of("Router")["CodeValidationRequested"]],
        )
        (decoded,) = LogDecoder().decode_all(logs)
        assert (decoded.name, decoded.args) == ("CodeValidationRequested", {"codeId": cid})
        assert decoded.transaction_hash == tx_hash
        # How validators fetch the code: the transaction that emitted the event.
        fetched = await eth.get_transaction(decoded.transaction_hash)
        assert decode_code_upload(fetched["input"]) == (cid, code)


async def test_reverted_call_carries_the_decoded_error(anvil: Anvil, net: Net) -> None:
    data = net.router.contract.functions.createProgram(
        os.urandom(32), os.urandom(32), net.owner.address
    )
    async with EthClient(anvil.url) as eth:
        with pytest.raises(RpcError) as info:
            await eth.call(
                net.deployment.router, bytes.fromhex(data._encode_transaction_data()[2:])
            )
    assert info.value.revert is not None and info.value.revert.name == "CodeNotValidated"


def test_event_topics_and_code_upload_decoding() -> None:
    assert topics_of("Mirror")["StateChanged"] == event_topic("StateChanged(bytes32)")
    with pytest.raises(ValueError):
        decode_code_upload(b"\x00" * 40)
