# protoc --encode as a build step: text-format INPUT -> binary OUTPUT, for MESSAGE of PROTO (a
# path from ROOT, the import root). A failed encode leaves no OUTPUT behind.
#   cmake -DPROTOC=... -DROOT=... -DPROTO=... -DMESSAGE=... -DINPUT=... -DOUTPUT=... -P ProtocEncode.cmake
execute_process(
  COMMAND ${PROTOC} -I ${ROOT} --encode=${MESSAGE} ${PROTO}
  WORKING_DIRECTORY ${ROOT}
  INPUT_FILE ${INPUT}
  OUTPUT_FILE ${OUTPUT}
  ERROR_VARIABLE error
  RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  file(REMOVE ${OUTPUT})
  message(FATAL_ERROR "protoc --encode=${MESSAGE} < ${INPUT}: ${error}")
endif()
